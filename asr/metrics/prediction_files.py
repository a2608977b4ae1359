"""Reading prediction files and writing score files.

A prediction file is CSV (``.csv``; ``.tsv`` is tab-separated) or JSON Lines (``.jsonl``,
``.ndjson``, ``.json``); other suffixes are sniffed (a first ``{`` means JSON Lines). Columns:

- ``id`` (or the CS-Mage authors' ``sample_id``),
- ``reference`` (or ``reference_text``),
- ``prediction``,
- optional ``duration`` (audio seconds) and ``decode_seconds``.

Other columns are ignored. In JSON Lines a ``null`` text counts as empty; blank lines are
skipped. Every problem raises :class:`~asr.errors.DataError` naming the file (and the line
where there is one).

>>> rows = read_predictions("runs/whisper/predictions.jsonl")  # doctest: +SKIP
>>> rows[0]  # doctest: +SKIP
{'id': 'video_1_1', 'reference': '...', 'prediction': '...', 'duration': 3.2, 'decode_seconds': 0.4}
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
from pathlib import Path
from typing import Any

from asr.errors import DataError
from asr.io import iter_jsonl, write_text
from asr.metrics.corpus import UTTERANCE_FIELDS, ScoreResult
from asr.predictions import MAX_FIELD_CHARS
from asr.run_records import EvalRecord

log = logging.getLogger(__name__)

_REQUIRED = {
    "id": ("id", "sample_id"),
    "reference": ("reference", "reference_text"),
    "prediction": ("prediction",),
}
_OPTIONAL = ("duration", "decode_seconds")
_JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


def _resolve_columns(path: Path, columns: list[str], where: str) -> dict[str, str]:
    """Map canonical names to the file's column names; error listing what is missing."""
    mapping, missing = {}, []
    for name, aliases in _REQUIRED.items():
        found = next((a for a in aliases if a in columns), None)
        if found is None:
            missing.append(" or ".join(repr(a) for a in aliases))
        else:
            mapping[name] = found
    if missing:
        raise DataError(
            f"{path}{where}: missing column {', '.join(missing)} (found: {', '.join(map(repr, columns)) or 'none'})"
        )
    for name in _OPTIONAL:
        if name in columns:
            mapping[name] = name
    return mapping


def _text(path: Path, line: int, key: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise DataError(f"{path}, line {line}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _seconds(path: Path, line: int, key: str, value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{path}, line {line}: {key!r} is not a number: {value!r}") from None
    if math.isnan(seconds) or seconds < 0:
        raise DataError(f"{path}, line {line}: {key!r} must be a non-negative number, got {value!r}")
    return seconds


def _canonical(path: Path, line: int, record: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    raw_id = record[mapping["id"]]
    uid = str(raw_id).strip() if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else ""
    if not uid:
        raise DataError(f"{path}, line {line}: empty or invalid id {raw_id!r}")
    return {
        "id": uid,
        "reference": _text(path, line, mapping["reference"], record[mapping["reference"]]),
        "prediction": _text(path, line, mapping["prediction"], record[mapping["prediction"]]),
        **{k: _seconds(path, line, k, record.get(mapping[k])) if k in mapping else None for k in _OPTIONAL},
    }


# A cell of pandas' missing value: scoring it as the text "nan" would be silently wrong.
MISSING_CELLS = frozenset({"NaN", "nan"})


def _read_csv(path: Path, text: str, delimiter: str) -> list[tuple[int, dict[str, Any]]]:
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    start = 1
    try:
        columns = [c.strip() for c in reader.fieldnames or []]
        reader.fieldnames = columns
        mapping = _resolve_columns(path, columns, " (header)")
        records, missing = [], []
        start = reader.line_num + 1
        for row in reader:
            extra = row.pop(None, None)
            if extra is not None or any(v is None for v in row.values()):
                found = len(columns) + len(extra) if extra else sum(v is not None for v in row.values())
                raise DataError(f"{path}, line {start}: {found} fields, but the header has {len(columns)}")
            record = _canonical(path, start, row, mapping)
            if record["reference"] in MISSING_CELLS:
                raise DataError(
                    f"{path}, line {start}: the reference is a missing value ({record['reference']!r})"
                )
            if record["prediction"] in MISSING_CELLS:
                missing.append(start)
                record["prediction"] = ""
            records.append((start, record))
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}, line {start}: malformed CSV: {err}") from None
    if missing:
        log.warning(
            "%s: %d predictions are a missing value (NaN), scored as empty (lines %s)",
            path,
            len(missing),
            ", ".join(map(str, missing[:10])),
        )
    return records


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    records = []
    for line_no, record in iter_jsonl(path):
        mapping = _resolve_columns(path, list(record), f", line {line_no}")
        records.append((line_no, _canonical(path, line_no, record, mapping)))
    return records


def read_predictions(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a CSV or JSONL prediction file into dicts with canonical keys (see module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: prediction file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES or (suffix not in {".csv", ".tsv"} and text.lstrip().startswith("{")):
        records = _read_jsonl(path)
    else:
        records = _read_csv(path, text, "\t" if suffix == ".tsv" else ",")
    if not records:
        raise DataError(f"{path}: no predictions in the file")
    first_line: dict[str, int] = {}
    dupes: list[str] = []
    for line, rec in records:
        if rec["id"] in first_line:
            dupes.append(f"{rec['id']} (lines {first_line[rec['id']]} and {line})")
        else:
            first_line[rec["id"]] = line
    if dupes:
        raise DataError(f"{path}: {len(dupes)} duplicate ids, e.g. {'; '.join(dupes[:5])}")
    return [rec for _, rec in records]


def write_score(
    result: ScoreResult,
    metrics_path: str | os.PathLike,
    per_utterance_path: str | os.PathLike | None,
    record: EvalRecord | None = None,
) -> None:
    """Write ``metrics.json`` (``record``, else the numbers alone) and the per-utterance CSV.

    The CSV (skipped if ``per_utterance_path`` is ``None``) has the columns ``UTTERANCE_FIELDS``;
    an undefined per-utterance ``cer`` (empty reference, non-empty prediction) is an empty cell.
    """
    (record or EvalRecord(metrics=result.metrics)).save(Path(metrics_path))
    if per_utterance_path is not None:
        buf = io.StringIO(newline="")
        writer = csv.DictWriter(buf, fieldnames=UTTERANCE_FIELDS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(result.utterances)
        write_text(Path(per_utterance_path), buf.getvalue())
