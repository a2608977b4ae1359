"""JSON-lines manifests: one utterance per line.

Keys written by ``asr prepare``: ``id``, ``audio`` (absolute path), ``duration``
(seconds), ``text`` (raw reference), ``text_norm`` (protocol normalization),
``split``, then any extra keys (``source_id``, ``format``, ...), kept on round trip.

>>> rows = read_manifest("prepared/manifests/test.jsonl")
>>> rows[0].id, rows[0].text_norm
('video_1_1', '这种评价就非常非常高啊')
>>> write_manifest("subset.jsonl", rows[:10])
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.errors import DataError
from asr.text.normalize import normalize

CORE_KEYS = ("id", "audio", "duration", "text", "text_norm", "split")
REQUIRED_KEYS = ("id", "audio", "text")


@dataclass
class Utterance:
    """One manifest row. ``extra`` holds every other key, preserved on round trip."""

    id: str
    audio: str
    duration: float | None
    text: str
    text_norm: str
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id,
            "audio": self.audio,
            "duration": self.duration,
            "text": self.text,
            "text_norm": self.text_norm,
            "split": self.split,
        }
        for key, value in self.extra.items():
            if key not in row:
                row[key] = value
        return row

    @classmethod
    def from_dict(cls, row: dict[str, Any], base_dir: Path | None = None) -> Utterance:
        """Build from a parsed row; relative ``audio`` is resolved against ``base_dir``.

        Missing ``duration`` stays None, missing ``text_norm`` is computed with the protocol.
        """
        missing = [key for key in REQUIRED_KEYS if key not in row]
        if missing:
            raise KeyError(", ".join(missing))
        audio = Path(str(row["audio"])).expanduser()
        if not audio.is_absolute() and base_dir is not None:
            audio = base_dir / audio
        text = "" if row["text"] is None else str(row["text"])
        duration = row.get("duration")
        norm = row.get("text_norm")
        return cls(
            id=str(row["id"]),
            audio=str(audio),
            duration=None if duration is None else float(duration),
            text=text,
            text_norm=normalize(text) if norm is None else str(norm),
            split=row.get("split"),
            extra={key: value for key, value in row.items() if key not in CORE_KEYS},
        )


def iter_jsonl(path: str | Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; bad JSON is a DataError."""
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8")
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from err
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: invalid JSON ({err.msg})") from err
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def read_manifest(path: str | Path, *, unique: bool = True) -> list[Utterance]:
    """Read a manifest; relative audio paths are resolved against the manifest's folder.

    Raises DataError (with file and line number) for bad JSON, a missing ``id``/``audio``/
    ``text`` key, or a repeated id when ``unique`` is true.
    """
    path = Path(path)
    rows: list[Utterance] = []
    seen: dict[str, int] = {}
    for number, obj in iter_jsonl(path):
        try:
            utt = Utterance.from_dict(obj, base_dir=path.parent.resolve())
        except KeyError as err:
            raise DataError(f"{path}:{number}: missing key(s) {err.args[0]}") from err
        except (TypeError, ValueError) as err:
            raise DataError(f"{path}:{number}: bad value ({err})") from err
        if unique and utt.id in seen:
            raise DataError(f"{path}:{number}: duplicate id {utt.id!r} (first on line {seen[utt.id]})")
        seen.setdefault(utt.id, number)
        rows.append(utt)
    return rows


def write_manifest(path: str | Path, rows: Iterable[Utterance]) -> Path:
    """Write rows as JSON lines (UTF-8, not ASCII-escaped) atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row.to_dict(), ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
