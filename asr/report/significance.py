"""Paired bootstrap of every leaderboard row against a baseline row (:func:`asr.metrics.paired_bootstrap`).

Rows are compared on the utterances they share by id; rows decoded on other utterances, or
without per-utterance results, get a note instead of numbers.
"""

from __future__ import annotations

from typing import Any

from asr.errors import DataError
from asr.metrics import paired_bootstrap
from asr.report.rows import ZERO_SHOT, Row
from asr.report.utterances import as_score


def pick_baseline(rows: list[Row], choice: str | None = None) -> Row | None:
    """The row named ``choice`` (its label, e.g. ``"whisper-base zero-shot"``, or a 1-based index);
    by default the first zero-shot row, else the first row with results."""
    usable = [r for r in rows if r.ok]
    if choice:
        if choice.isdigit() and 0 < int(choice) <= len(rows):
            return rows[int(choice) - 1]
        found = [r for r in rows if r.label == choice]
        if not found:
            raise DataError(f"--baseline {choice!r}: no such row (rows: {', '.join(r.label for r in rows)})")
        return found[0]
    return next((r for r in usable if r.setting == ZERO_SHOT), usable[0] if usable else None)


def compare(baseline: Row, row: Row, n_bootstrap: int = 1000, seed: int = 0) -> dict[str, Any]:
    """``delta`` (row − baseline CER), ``delta_ci95``, ``p_delta_ge_0``, or a ``note``."""
    if row is baseline:
        return {"note": "baseline"}
    if not (row.ok and baseline.ok):
        return {"note": "no results"}
    a, b = baseline.utterances(), row.utterances()
    if not a or not b:
        return {"note": "no per-utterance results"}
    try:
        result = paired_bootstrap(
            as_score(a, baseline.metrics),
            as_score(b, row.metrics),
            n_bootstrap,
            seed,
            labels=(baseline.label, row.label),
        )
    except DataError as err:
        return {"note": f"not comparable: {str(err).split(': ', 1)[-1][:80]}"}
    return {k: result[k] for k in ("delta", "delta_ci95", "p_delta_ge_0", "n_bootstrap")}


def add_significance(rows: list[Row], baseline: Row | None, n_bootstrap: int = 1000, seed: int = 0) -> None:
    """Fill ``row.significance`` for every row."""
    for row in rows:
        row.significance = compare(baseline, row, n_bootstrap, seed) if baseline and row.ok else None
