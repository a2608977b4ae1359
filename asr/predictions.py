"""``predictions.csv``: written row by row as decoding goes, resumable after a kill."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from asr.errors import DataError

COLUMNS = ["id", "reference", "prediction", "prediction_raw", "duration", "decode_seconds"]


def read_done(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already written, by id. A torn last line (killed mid-write) is dropped from the file."""
    if not path.is_file():
        return {}
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as f:
            f.truncate(cut)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames and reader.fieldnames != COLUMNS:
            raise DataError(f"{path}: unexpected columns {reader.fieldnames}; expected {COLUMNS}")
        return {row["id"]: row for row in reader}


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
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
