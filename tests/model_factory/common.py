"""Helpers shared by the replica writers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# CJK Unified Ideographs, then Extension A, in code-point order: the filler of placeholder
# character vocabularies (the demo corpus and CS-Mage are inside the first block).
CJK_BLOCKS = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF))


def cjk_characters(count: int) -> list[str]:
    """The first ``count`` characters of the CJK Unified Ideographs block (then Extension A)."""
    chars = [chr(c) for first, last in CJK_BLOCKS for c in range(first, last + 1)]
    if count > len(chars):
        raise ValueError(f"only {len(chars)} CJK ideographs available, asked for {count}")
    return chars[:count]


def write_json(path: Path, data: Any, indent: int | None = 2) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False, indent=indent) + "\n", encoding="utf-8")


def reduce(real: int, layers: int | None) -> int:
    """``real`` layers, or ``layers`` when that is smaller."""
    return real if layers is None else min(real, layers)
