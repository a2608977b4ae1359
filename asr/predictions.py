"""The toolkit's ``predictions.csv``, written and read here only.

Decoding writes it row by row, durable and resumable after a kill (:class:`PredictionWriter`,
:func:`read_done`), then in manifest order (:func:`rewrite_in_order`); the report reads it back
(:func:`read_rows`). One row per utterance, the columns :data:`COLUMNS`. Scoring prediction
files of any format, other tools' included, is :mod:`asr.metrics.prediction_files`.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "p.csv"
>>> rewrite_in_order(path, [dict(id="a", reference="好", prediction="好", prediction_raw=" 好",
...                              duration=1.5, decode_seconds=0.1)])
>>> read_rows(path)[0]["prediction_raw"], path.read_text(encoding="utf-8").splitlines()[1]
(' 好', 'a,好,好, 好,1.5,0.1')
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from asr.errors import DataError
from asr.io import atomic_write

COLUMNS = ["id", "reference", "prediction", "prediction_raw", "duration", "decode_seconds"]
MAX_FIELD_CHARS = 1 << 26  # the csv module's default (128 KiB) refuses long but valid transcripts


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a finished ``predictions.csv`` as strings, in file order (empty when there is none)."""
    if not path.is_file():
        return []
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FIELD_CHARS))
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def read_done(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already written, by id. A row torn by a kill is cut from the file.

    A kill can cut the last row anywhere, also just after a newline inside a quoted prediction,
    which leaves a row with missing fields: such a last row is dropped (the file is rewritten
    without it). An incomplete row anywhere else is damage this writer cannot cause: an error.
    """
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames and reader.fieldnames != COLUMNS:
            raise DataError(f"{path}: unexpected columns {reader.fieldnames}; expected {COLUMNS}")
        rows = list(reader)
    torn = [i for i, row in enumerate(rows) if None in row or None in row.values()]
    if torn and torn != [len(rows) - 1]:
        raise DataError(
            f"{path}: row {torn[0] + 1} is incomplete but not the last one; the file was not written "
            "by asr evaluate, or was damaged: choose another --out"
        )
    if torn:
        rows.pop()
        rewrite_in_order(path, rows)
    return {row["id"]: row for row in rows}


class PredictionWriter:
    """Appends rows and makes each batch durable (flush + fsync) before moving on."""

    def __init__(self, path: Path):
        self.path = path
        new = not path.is_file() or path.stat().st_size == 0
        self._file = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if new:
            self._writer.writeheader()

    def write(self, rows: list[dict[str, Any]]) -> None:
        self._writer.writerows(rows)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def rewrite_in_order(path: Path, rows: list[dict[str, Any]]) -> None:
    """Rewrite a finished file in manifest order (atomic)."""
    with atomic_write(path, newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
