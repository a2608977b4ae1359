"""Subtitle and transcript files from timed pieces: SRT, WebVTT, JSON and plain text.

>>> cues = [Cue(0.0, 1.5, "好咯"), Cue(61.25, 3723.0, "冇得事")]
>>> print(to_srt(cues))
1
00:00:00,000 --> 00:00:01,500
好咯
<BLANKLINE>
2
00:01:01,250 --> 01:02:03,000
冇得事
<BLANKLINE>
<BLANKLINE>
>>> to_vtt(cues).splitlines()[:3]
['WEBVTT', '', '00:00:00.000 --> 00:00:01.500']
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FORMATS = ("srt", "vtt", "json", "txt")
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Cue:
    """One timed piece of text (seconds from the start of the media)."""

    start: float
    end: float
    text: str


def timestamp(seconds: float, sep: str = ",") -> str:
    """``HH:MM:SS,mmm`` (SRT) or, with ``sep="."``, ``HH:MM:SS.mmm`` (WebVTT)."""
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{ms:03d}"


def _line(text: str) -> str:
    """One subtitle line: no line breaks (a blank line would end the cue), no ``-->``."""
    return " ".join(text.split()).replace("-->", "->")


def _spoken(cues: Sequence[Cue]) -> list[Cue]:
    return [c for c in cues if _line(c.text)]


def to_srt(cues: Sequence[Cue]) -> str:
    """SubRip: numbered cues, comma before the milliseconds; empty pieces are left out."""
    blocks = [
        f"{n}\n{timestamp(c.start)} --> {timestamp(c.end)}\n{_line(c.text)}\n"
        for n, c in enumerate(_spoken(cues), 1)
    ]
    return "\n".join(blocks) + ("\n" if blocks else "")


def to_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues with a dot before the milliseconds."""
    blocks = [
        f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{_line(c.text)}\n" for c in _spoken(cues)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_txt(cues: Sequence[Cue]) -> str:
    """The transcript: one line per spoken piece."""
    return "".join(f"{_line(c.text)}\n" for c in _spoken(cues))


def to_json(cues: Sequence[Cue], **meta: Any) -> str:
    """``{"schema": 1, **meta, "segments": [{"start", "end", "text"}, ...]}`` (every piece, empty ones too)."""
    data = {
        "schema": JSON_SCHEMA_VERSION,
        **meta,
        "segments": [{"start": round(c.start, 3), "end": round(c.end, 3), "text": c.text} for c in cues],
    }
    return json.dumps(data, ensure_ascii=False, indent=1) + "\n"


def render(fmt: str, cues: Sequence[Cue], **meta: Any) -> str:
    """The file text of one format in :data:`FORMATS`."""
    if fmt == "json":
        return to_json(cues, **meta)
    return {"srt": to_srt, "vtt": to_vtt, "txt": to_txt}[fmt](cues)
