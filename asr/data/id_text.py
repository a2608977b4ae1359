"""Reading ``<id> <text>`` line files: Kaldi ``text``, ``transcripts.txt``, the v1 split lists.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "transcripts.txt"
>>> _ = path.write_text("01_0001 好咯\\n\\n01_0002 蛮好的\\n01_0001 又来了\\n", encoding="utf-8")
>>> read_id_text_file(path)[1]
IdText(id='01_0002', text='蛮好的', line=3)
>>> suspects = []
>>> first_by_id(path, suspects)
{'01_0001': ('好咯', 1), '01_0002': ('蛮好的', 3)}
>>> suspects[0].detail
'repeated in transcripts.txt (first on line 1)'
"""

from __future__ import annotations

from pathlib import Path

from asr.data.records import IdText, Suspect, keep_first
from asr.data.text_files import read_text_file


def read_id_text_file(path: str | Path) -> list[IdText]:
    """Parse one ``<id> <text>`` pair per non-blank line (text may be empty).

    The file must be UTF-8 (a BOM is allowed); anything else is a DataError naming the byte,
    the line and the encoding the file looks like (:func:`asr.data.text_files.read_text_file`).
    """
    content = read_text_file(path)
    rows = []
    for number, line in enumerate(content.splitlines(), start=1):
        parts = line.strip().split(maxsplit=1)
        if parts:
            rows.append(IdText(parts[0], parts[1] if len(parts) > 1 else "", number))
    return rows


def first_by_id(path: Path, suspects: list[Suspect]) -> dict[str, tuple[str, int]]:
    """``id -> (text, line)`` from an id/text file; repeated ids are reported, first kept."""
    rows = ((row.id, f"{path}:{row.line}", (row.text, row.line)) for row in read_id_text_file(path))
    return keep_first(rows, suspects, lambda first: f"repeated in {path.name} (first on line {first[1]})")
