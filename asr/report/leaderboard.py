"""``asr report``: rows from run folders -> tables, significance, plots and HTML error reports."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import DataError
from asr.report.html import write_report
from asr.report.plots import write_plots
from asr.report.rows import Row, collect
from asr.report.significance import add_significance, pick_baseline
from asr.report.table import write_tables

log = logging.getLogger(__name__)


@dataclass
class Leaderboard:
    """What ``write_leaderboard`` produced."""

    rows: list[Row]
    baseline: Row | None
    files: list[Path] = field(default_factory=list)
    html: list[Path] = field(default_factory=list)


def build(
    folders: list[Path], baseline: str | None = None, n_bootstrap: int = 1000, seed: int = 0
) -> Leaderboard:
    """Rows of ``folders`` with the paired bootstrap against the baseline row."""
    rows = collect(folders)
    if not rows:
        raise DataError(
            f"no results in {', '.join(map(str, folders))} (metrics.json, metrics_test.json, stage.json)"
        )
    base = pick_baseline(rows, baseline)
    add_significance(rows, base, n_bootstrap, seed)
    return Leaderboard(rows, base)


def write_leaderboard(
    folders: list[Path],
    out: Path,
    *,
    baseline: str | None = None,
    n_bootstrap: int = 1000,
    plots: bool = True,
    html: bool = False,
    embed_audio_max_bytes: int = 0,
) -> Leaderboard:
    """``results.{md,csv,tex}`` and the plots in ``out``; with ``html`` a ``report.html`` beside
    every evaluation's predictions."""
    board = build(folders, baseline, n_bootstrap)
    board.files = write_tables(board.rows, board.baseline, out)
    if plots:
        board.files += write_plots(board.rows, out)
    if html:
        board.html = [
            write_report(r, embed_audio_max_bytes=embed_audio_max_bytes)
            for r in board.rows
            if r.ok and r.eval_dir
        ]
    return board
