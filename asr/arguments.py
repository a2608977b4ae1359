"""Range-checked argparse types: every numeric option of every command uses one of these.

A bad value (zero, negative, NaN, infinity, out of range) is refused while parsing, as one
``error: argument --NAME: ...`` line and exit status 2, before any file is written.

>>> positive_int("8")
8
>>> positive_int("-1")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a whole number >= 1, not '-1'
>>> fraction("nan")
Traceback (most recent call last):
...
argparse.ArgumentTypeError: must be a finite number between 0 and 1, not 'nan'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


class RangeType:
    """An argparse ``type`` that parses a number and checks it lies in ``[low, high]``.

    ``low_open``: ``low`` itself is refused (``> low``). The bounds are kept for tests and help.
    """

    def __init__(
        self,
        kind: type[int] | type[float],
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
    ) -> None:
        self.kind, self.low, self.high, self.low_open = kind, low, high, low_open
        self.__name__ = kind.__name__  # argparse names the type in its messages

    def describe(self) -> str:
        what = "a whole number" if self.kind is int else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{what} between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{what} {'>' if self.low_open else '>='} {self.low:g}"
        return what

    def __call__(self, text: str) -> int | float:
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            value = None
        ok = value is not None and math.isfinite(value)
        if ok and self.low is not None:
            ok = value > self.low if self.low_open else value >= self.low
        if ok and self.high is not None:
            ok = value <= self.high
        if not ok:
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, not {text!r}")
        return value


def int_at_least(low: int) -> Callable[[str], int]:
    """A whole number ``>= low``."""
    return RangeType(int, low)


positive_int = RangeType(int, 1)  # batch sizes, beam sizes, counts, resamples
non_negative_int = RangeType(int, 0)  # seeds, offsets
positive_float = RangeType(float, 0.0, low_open=True)  # durations, rates
non_negative_float = RangeType(float, 0.0)  # gaps, pauses
fraction = RangeType(float, 0.0, 1.0)  # thresholds, probabilities
