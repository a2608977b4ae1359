"""Where benchmark scripts record their tables: ``BENCHMARKS.md`` at the repository root."""

from __future__ import annotations

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


def publish(text: str, write: bool = True) -> None:
    """Print a benchmark's table and, unless ``write`` is false, append it to BENCHMARKS.md."""
    print(text)
    if write:
        append_section(text)
