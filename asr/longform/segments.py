"""Speech spans from VAD probabilities, merged into pieces no longer than the model's context.

Everything is counted in VAD frames (512 samples, 32 ms). :class:`Segmenter` is fed frame
probabilities and energies as they arrive and returns each piece as soon as it is final, so
a caller keeps only the audio of the piece still open (at most ``max_seconds`` plus the
pause that ends it):

- a span opens at a frame with probability >= ``threshold`` and closes after
  ``min_silence_ms`` below ``neg_threshold`` (hysteresis, as silero-vad's own helper);
  spans shorter than ``min_speech_ms`` are dropped;
- consecutive spans merge while the piece, padded by ``pad_ms`` at each end, stays within
  ``max_seconds`` and the pause between them is at most ``max_gap_seconds``;
- a span longer than that is cut at its lowest-energy frame in the second half of the window;
- with ``max_pause_seconds``, a pause inside a piece is shortened to that length and counted
  so (fewer 30 s encoder windows carry the same speech, as in faster-whisper's batched
  pipeline; a piece then spans at most twice ``max_seconds`` of the file); ``None`` (the
  default) keeps every piece one slice of the file.

>>> seg = Segmenter(SegmentOptions(max_seconds=2.0, pad_ms=64))
>>> probs = np.array([0.0] * 10 + [0.9] * 20 + [0.0] * 10 + [0.9] * 30 + [0.0] * 10, np.float32)
>>> seg.push(probs, np.zeros(probs.size, np.float32)) + seg.finish(probs.size)
[Span(start=8, end=32, removed=()), Span(start=38, end=72, removed=())]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from asr.errors import ConfigError
from asr.longform.vad import FRAME_SAMPLES

FRAME_SECONDS = FRAME_SAMPLES / 16000


def _frames(ms: float) -> int:
    return max(0, round(ms / 1000 / FRAME_SECONDS))


@dataclass(frozen=True)
class SegmentOptions:
    """How speech is found and grouped (see the module docstring)."""

    max_seconds: float = 30.0
    max_gap_seconds: float = 2.0
    threshold: float = 0.5
    neg_threshold: float = 0.35
    min_silence_ms: float = 100.0
    min_speech_ms: float = 250.0
    pad_ms: float = 200.0
    max_pause_seconds: float | None = None

    def check(self) -> None:
        if self.max_seconds < 1.0:
            raise ConfigError(f"the longest piece must be at least 1 s, not {self.max_seconds}")
        if self.max_pause_seconds is not None and self.max_pause_seconds < 0:
            raise ConfigError(f"the longest pause kept must be >= 0 s, not {self.max_pause_seconds}")
        if not 0 < self.neg_threshold <= self.threshold < 1:
            raise ConfigError("VAD thresholds must satisfy 0 < neg_threshold <= threshold < 1")


class Span(NamedTuple):
    """A piece in frames: ``start``/``end`` on the file's clock, ``removed`` pauses ``(a, b)`` cut out of it."""

    start: int
    end: int
    removed: tuple[tuple[int, int], ...] = ()

    @property
    def kept(self) -> int:
        """Frames of audio the piece carries."""
        return self.end - self.start - sum(b - a for a, b in self.removed)


class Segmenter:
    """Streaming state machine: :meth:`push` frames, then :meth:`finish`; both return :class:`Span` pieces."""

    def __init__(self, options: SegmentOptions) -> None:
        options.check()
        self.options = options
        self.pad = _frames(options.pad_ms)
        self.core_max = max(4, int(options.max_seconds / FRAME_SECONDS) - 2 * self.pad)  # <= max_seconds
        self.max_gap = max(self.pad, round(options.max_gap_seconds / FRAME_SECONDS))
        self.min_silence = max(1, _frames(options.min_silence_ms))
        self.min_speech = _frames(options.min_speech_ms)
        pause = options.max_pause_seconds
        self.pause = None if pause is None else round(pause / FRAME_SECONDS)  # frames kept of a pause
        self.max_extent = 2 * self.core_max if pause is not None else self.core_max  # on the file's clock
        self.frame = 0  # frames seen
        self.open: int | None = None  # start of the speech span in progress
        self.quiet: int | None = None  # first frame of the pause inside that span
        self.group: tuple[int, int] | None = None  # merged spans not yet emitted
        self.removed: list[tuple[int, int]] = []  # pauses cut out of the group
        self.emitted = 0  # end of the last emitted piece
        self.energy_base = 0
        self.energy = np.zeros(0, np.float32)

    def keep_from(self) -> int:
        """The first frame any future piece can include (audio before it may be dropped)."""
        starts = [s for s in (self.open, self.group[0] if self.group else None) if s is not None]
        first = min(starts) if starts else self.frame
        return max(self.emitted, first - self.pad)

    def push(self, probs: np.ndarray, energy: np.ndarray) -> list[Span]:
        """Frames' speech probabilities and log energies, in order; returns the pieces now final."""
        self.energy = np.concatenate([self.energy, energy.astype(np.float32)])
        out: list[Span] = []
        for p in probs.tolist():
            self._step(p, out)
            self.frame += 1
        drop = self.keep_from() - self.energy_base
        if drop > 0:
            self.energy, self.energy_base = self.energy[drop:], self.energy_base + drop
        return out

    def finish(self, total_frames: int | None = None) -> list[Span]:
        """The end of the stream: close what is open."""
        end = self.frame if total_frames is None else total_frames
        out: list[Span] = []
        if self.open is not None:
            self._close(self.open, self.quiet if self.quiet is not None else self.frame, out)
            self.open = None
        if self.group:
            out.append(self._emit(*self.group, next_start=None, limit=end))
        return out

    def _step(self, p: float, out: list[Span]) -> None:
        o, i = self.options, self.frame
        if self.open is None:
            if p >= o.threshold:
                self.open, self.quiet = i, None
            elif self.group and i - self.group[1] >= self.max_gap:
                out.append(self._emit(*self.group, next_start=None, limit=None))
            return
        if p >= o.threshold:
            self.quiet = None
        elif p < o.neg_threshold:
            self.quiet = i if self.quiet is None else self.quiet
            if i + 1 - self.quiet >= self.min_silence:
                self._close(self.open, self.quiet, out)
                self.open = None
                return
        if not self._fits(self.open, i + 1):
            if self.group:
                out.append(self._emit(*self.group, next_start=self.open, limit=None))
            else:
                cut = self._quietest(self.open + self.core_max // 2, i + 1)
                out.append(self._emit(self.open, cut, next_start=cut, limit=None, padded=False))
                self.open = cut

    def _close(self, start: int, end: int, out: list[Span]) -> None:
        if end - start < self.min_speech:
            return
        if self.group and start - self.group[1] <= self.max_gap and self._fits(start, end):
            cut = self._pause_cut(start)
            if cut:
                self.removed.append(cut)
            self.group = (self.group[0], end)
            return
        if self.group:
            out.append(self._emit(*self.group, next_start=start, limit=None))
        self.group = (start, end)

    def _pause_cut(self, start: int) -> tuple[int, int] | None:
        """The part of the pause from the group's end to ``start`` that is cut out (None: kept whole)."""
        if self.group is None or self.pause is None or start - self.group[1] <= self.pause:
            return None
        head = self.pause // 2
        return self.group[1] + head, start - (self.pause - head)

    def _fits(self, start: int, end: int) -> bool:
        """Whether speech from ``start`` to ``end`` still fits in the group (or alone, without one)."""
        if self.group is None:
            return end - start <= self.core_max
        cut = self._pause_cut(start)
        removed = sum(b - a for a, b in self.removed) + (cut[1] - cut[0] if cut else 0)
        extent = end - self.group[0]
        return extent - removed <= self.core_max and extent <= self.max_extent

    def _quietest(self, lo: int, hi: int) -> int:
        window = self.energy[lo - self.energy_base : hi - self.energy_base]
        return lo + int(np.argmin(window)) if window.size else hi

    def _emit(
        self, start: int, end: int, next_start: int | None, limit: int | None, padded: bool = True
    ) -> Span:
        """The piece from ``start`` to ``end`` padded (clear of the next piece); ends the group."""
        first = max(self.emitted, start - self.pad)
        last = end + self.pad if padded else end
        if next_start is not None:
            last = min(last, (end + next_start + 1) // 2 if padded else next_start)
        if limit is not None:
            last = min(last, limit)
        self.emitted = last
        span = Span(first, last, tuple(self.removed) if self.group else ())
        self.group, self.removed = None, []
        return span
