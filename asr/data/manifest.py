"""JSON-lines manifests: one utterance per line.

Keys written by ``asr prepare``: ``id``, ``audio`` (absolute path), ``duration``
(seconds), ``text`` (raw reference), ``text_norm`` (protocol normalization),
``split``, then any extra keys (``source_id``, ``format``, ...), kept on round trip.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "test.jsonl"
>>> _ = write_manifest(path, [Utterance("video_1_1", "/data/01_0001.wav", 2.5, "好高啊！", "好高啊")])
>>> print(path.read_text(encoding="utf-8"), end="")
{"id": "video_1_1", "audio": "/data/01_0001.wav", "duration": 2.5, "text": "好高啊！", "text_norm": "好高啊", "split": null}
>>> rows = read_manifest(path)
>>> rows[0].id, rows[0].text_norm, rows[0].split
('video_1_1', '好高啊', None)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.errors import DataError
from asr.io import iter_jsonl, write_jsonl
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
    return write_jsonl(path, (row.to_dict() for row in rows))
