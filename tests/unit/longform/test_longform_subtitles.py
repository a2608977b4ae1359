"""SRT/VTT/JSON/TXT writers: what they write parses back to the same cues."""

from __future__ import annotations

import json

import pytest

from asr.errors import ConfigError
from asr.longform.subtitles import Cue, render, timestamp
from asr.longform.transcribe import parse_formats
from tests.longform_media import parse_cues

CUES = [
    Cue(0.0, 1.5, "好咯"),
    Cue(2.0, 2.5, "   "),  # an empty piece: in JSON, not in subtitles
    Cue(3.0, 7.25, "两行\n文字 --> 一行"),
    Cue(3599.9996, 3723.0004, "一个钟头以后"),
]


@pytest.mark.parametrize("kind", ["srt", "vtt"])
def test_subtitles_parse_back(kind: str) -> None:
    cues = parse_cues(render(kind, CUES), kind)
    assert cues == [(0.0, 1.5, "好咯"), (3.0, 7.25, "两行 文字 -> 一行"), (3600.0, 3723.0, "一个钟头以后")]


def test_json_keeps_every_piece_and_the_metadata() -> None:
    data = json.loads(render("json", CUES, media="a.mp4", model="m", duration=3800.0))
    assert data["schema"] == 1 and data["media"] == "a.mp4" and data["duration"] == 3800.0
    assert [(s["start"], s["end"]) for s in data["segments"]] == [
        (0.0, 1.5),
        (2.0, 2.5),
        (3.0, 7.25),
        (3600.0, 3723.0),
    ]


def test_txt_and_timestamps() -> None:
    assert render("txt", CUES) == "好咯\n两行 文字 -> 一行\n一个钟头以后\n"
    assert (timestamp(59.9999), timestamp(3661.5, ".")) == ("00:01:00,000", "01:01:01.500")
    assert render("srt", []) == "" and render("vtt", []) == "WEBVTT\n\n"


def test_format_names() -> None:
    assert parse_formats("SRT, vtt,srt") == ("srt", "vtt")
    with pytest.raises(ConfigError, match="choose from"):
        parse_formats("srt,ass")
