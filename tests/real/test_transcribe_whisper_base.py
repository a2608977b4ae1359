"""Real tier: ``asr transcribe`` with Whisper base on a short synthetic video (both backends)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asr.cli import main
from asr.metrics import score
from tests.longform_media import demo_clips, join, parse_cues, write_media

pytestmark = pytest.mark.real
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@pytest.mark.parametrize("backend", ["torch", "ct2"])
def test_transcribe_a_video_with_whisper_base(backend: str, whisper_base_dir: Path, tmp_path: Path) -> None:
    rec = join(demo_clips(8), pauses=[0.8, 1.6], noise=0.003)
    video = write_media(tmp_path / "clip.mp4", rec.audio, video=True)
    out = tmp_path / "out"
    args = [
        "transcribe",
        str(video),
        "--model",
        str(whisper_base_dir),
        "--backend",
        backend,
        "--out",
        str(out),
    ]
    assert main([*args, "--format", "srt,vtt,json", "--no-progress"]) == 0
    data = json.loads((out / "clip.json").read_text(encoding="utf-8"))
    segments = data["segments"]
    assert segments and segments[0]["start"] <= rec.speech[0][0] + 0.1
    assert segments[-1]["end"] >= rec.speech[-1][1]
    assert all(s["end"] - s["start"] <= 30.0 for s in segments)
    text = "".join(s["text"] for s in segments)
    assert len(CJK.findall(text)) >= 0.5 * len("".join(rec.texts))
    cer = score(["clip"], ["".join(rec.texts)], [text], n_bootstrap=0).metrics.cer
    assert cer < 0.9, (cer, text)  # espeak Mandarin, Traditional output: loose (noise or nothing is 1.0)
    for kind in ("srt", "vtt"):
        cues = parse_cues((out / f"clip.{kind}").read_text(encoding="utf-8"), kind)
        assert [(c[0], c[1]) for c in cues] == [(s["start"], s["end"]) for s in segments if s["text"].strip()]
