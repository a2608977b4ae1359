"""Reading ``<id> <text>`` line files: Kaldi ``text``, ``transcripts.txt``, the v1 split lists.

>>> read_id_text_file("transcripts.txt")[0]
IdText(id='01_0001', text='好咯', line=1)
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from asr.data.csmage import canonical_id
from asr.data.records import DUPLICATE_ID, Suspect
from asr.errors import DataError


class IdText(NamedTuple):
    id: str
    text: str
    line: int


def read_id_text_file(path: str | Path) -> list[IdText]:
    """Parse one ``<id> <text>`` pair per non-blank line (text may be empty)."""
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from err
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if parts:
            rows.append(IdText(parts[0], parts[1] if len(parts) > 1 else "", number))
    return rows


def first_by_id(path: Path, suspects: list[Suspect]) -> dict[str, tuple[str, int]]:
    """``id -> (text, line)`` from an id/text file; repeated ids are reported, first kept."""
    rows: dict[str, tuple[str, int]] = {}
    for row in read_id_text_file(path):
        if row.id in rows:
            detail = f"repeated in {path.name} (first on line {rows[row.id][1]})"
            suspects.append(Suspect(canonical_id(row.id)[0], f"{path}:{row.line}", DUPLICATE_ID, detail))
        else:
            rows[row.id] = (row.text, row.line)
    return rows
