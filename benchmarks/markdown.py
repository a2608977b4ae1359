"""Where benchmark scripts record their tables: ``BENCHMARKS.md`` at the repository root."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
HEADER = (
    "# Benchmarks\n\nMeasured by the scripts in `recipes/benchmark_*.py`; ratios are against a "
    "baseline run on the same clips by the same command.\n"
)


def append_section(text: str, path: Path = BENCHMARKS) -> None:
    """Append one measured section (a new file starts with the header)."""
    if not path.exists():
        path.write_text(HEADER, encoding="utf-8")
    with path.open("a", encoding="utf-8") as f:
        f.write(text if text.startswith("\n") else "\n" + text)


def stamp() -> str:
    """The date and commit a section is measured at (each section carries its own)."""
    from datetime import date

    from asr.provenance import git_commit

    return f"Measured on {date.today().isoformat()} at commit `{git_commit() or 'unknown'}`.\n"


def publish(text: str, write: bool = True) -> None:
    """Print a benchmark's table and, unless ``write`` is false, append it (dated, with the commit) to BENCHMARKS.md."""
    print(text)
    if write:
        append_section(text.rstrip("\n") + "\n\n" + stamp())


def add_common_arguments(parser: argparse.ArgumentParser, phases: tuple[str, ...]) -> None:
    """Flags every measuring benchmark shares, and the hidden ones of its child processes."""
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--no-write", action="store_true", help="do not append to BENCHMARKS.md")
    parser.add_argument("--phase", choices=phases, default=None, help=argparse.SUPPRESS)
