"""``asr transcribe`` and ``asr segment`` on synthetic recordings with a tiny random Whisper."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from tests.conftest import mux_media
from tests.longform_media import RATE, demo_clips, join, parse_cues, write_media

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
LONG_MINUTES = 30


def _minutes(folder: Path, minutes: int):
    """A demo clip every minute, light noise between (AAC in M4A)."""
    rec = join(demo_clips(minutes), pauses=[57.0], noise=0.01)
    return write_media(folder / f"{minutes}min.m4a", rec.audio), rec


@pytest.fixture(scope="module")
def long_m4a(tmp_path_factory: pytest.TempPathFactory):
    return _minutes(tmp_path_factory.mktemp("long"), LONG_MINUTES)


@pytest.fixture(scope="module")
def five_minutes(tmp_path_factory: pytest.TempPathFactory):
    return _minutes(tmp_path_factory.mktemp("five"), 5)


@pytest.fixture(scope="module")
def short_mp4(tmp_path_factory: pytest.TempPathFactory):
    rec = join(demo_clips(6), pauses=[1.2], noise=0.01)
    return write_media(tmp_path_factory.mktemp("short") / "talk.mp4", rec.audio, video=True), rec


_MEASURED = """
import re, sys
from pathlib import Path
import asr.longform.transcribe as t

def status(key):
    return int(re.search(key + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1]) * 1024

def measured(*args, **kwargs):
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak: count the pipeline only
    start = status("VmRSS")
    out = run(*args, **kwargs)
    print("GROWTH", status("VmHWM") - start)
    return out

run, t.run_pipeline = t.run_pipeline, measured
from asr.cli import main
from tests.conftest import mux_media
sys.exit(main(sys.argv[1:]))
"""


def _peak_growth(args: list[str]) -> tuple[int, str]:
    """Run ``asr ARGS`` in a fresh process; how far its peak RSS rose during the pipeline (bytes)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, *args], capture_output=True, text=True, env=env, cwd=REPO
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return int(done.stdout.split("GROWTH")[1].split()[0]), done.stdout


def test_a_long_file_streams_in_bounded_memory_and_writes_valid_formats(
    long_m4a, five_minutes, tiny_whisper: Path, tmp_path: Path
) -> None:
    (path, rec), (short, _) = long_m4a, five_minutes
    common = [
        "--model",
        str(tiny_whisper),
        "--batch-size",
        "4",
        "--no-progress",
        "--format",
        "srt,vtt,json,txt",
    ]
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak RSS")
    short_growth, _ = _peak_growth(["transcribe", str(short), "--out", str(tmp_path / "short"), *common])
    long_growth, out = _peak_growth(["transcribe", str(path), "--out", str(tmp_path / "long"), *common])
    # Decoding the whole file first adds at least its 16 kHz float32 copy (115 MB; load_audio
    # measured +340 MB). Streaming measured +70 MB between the 5 and 30 minute files (allocator
    # high-water marks over more batches, not audio: the pieces' buffers are bounded).
    decoded = LONG_MINUTES * 60 * RATE * 4
    assert long_growth - short_growth < decoded, (long_growth, short_growth)
    assert "transcribed 1 files" in out

    data = json.loads((tmp_path / "long" / f"{path.stem}.json").read_text(encoding="utf-8"))
    assert data["schema"] == 1 and data["media"] == str(path) and data["model"] == str(tiny_whisper)
    assert abs(data["duration"] - rec.audio.size / RATE) < 0.15  # AAC priming and padding
    segments = data["segments"]
    assert len(segments) == LONG_MINUTES  # one piece per clip: the 57 s pauses split them
    for seg, (start, end) in zip(segments, rec.speech, strict=True):
        assert (
            start - 0.3 <= seg["start"] <= start + 0.8 and end <= seg["end"] <= end + 0.4
        )  # -40 dB noise hides soft onsets
        assert set(seg) == {"start", "end", "text"} and isinstance(seg["text"], str)
    spoken = [s for s in segments if " ".join(s["text"].split())]
    for kind in ("srt", "vtt"):
        cues = parse_cues((tmp_path / "long" / f"{path.stem}.{kind}").read_text(encoding="utf-8"), kind)
        assert [(c[0], c[1]) for c in cues] == [(s["start"], s["end"]) for s in spoken]
        times = [t for c in cues for t in c[:2]]
        assert times == sorted(times)
    lines = (tmp_path / "long" / f"{path.stem}.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(spoken)


def test_bad_files_are_named_and_the_others_finish_and_a_rerun_skips_them(
    short_mp4, tiny_whisper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = short_mp4[0]
    silent = write_media(
        tmp_path / "quiet.m4a", 0.01 * np.random.default_rng(0).standard_normal(RATE * 8).astype(np.float32)
    )
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n", encoding="utf-8")
    files = [
        tmp_path / "missing.mp4",
        text,
        mux_media(tmp_path / "picture.mp4", None, seconds=0.5),
        good,
        silent,
    ]
    args = [
        "transcribe",
        *map(str, files),
        "--model",
        str(tiny_whisper),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "transcribed 2 files" in captured.out and "1 without speech, 3 failed" in captured.out
    assert "missing.mp4: audio file not found" in captured.err
    assert "notes.mp4: not a decodable audio file: text, not audio" in captured.err
    assert "picture.mp4: no audio stream" in captured.err
    assert "Traceback" not in captured.err
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{stem}.{ext}" for stem in ("talk", "quiet") for ext in ("srt", "vtt", "json")
    )
    assert json.loads((out / "quiet.json").read_text(encoding="utf-8"))["segments"] == []
    assert parse_cues((out / "quiet.srt").read_text(encoding="utf-8"), "srt") == []
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main([*args[:1], str(good), str(silent), *args[len(files) + 1 :]]) == 0
    assert "transcribed 0 files" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_segment_output_feeds_prepare(short_mp4, tiny_whisper: Path, tmp_path: Path) -> None:
    import pickle

    import soundfile as sf

    path, rec = short_mp4
    corpus = tmp_path / "corpus"
    args = ["segment", str(path), "--out", str(corpus), "--model", str(tiny_whisper), "--no-progress"]
    assert main(args) == 0
    wavs = sorted((corpus / "audio_wav").iterdir())
    assert [w.name for w in wavs] == [f"01_{n:04d}.wav" for n in range(1, 7)]
    info = sf.info(str(wavs[0]))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    table = pickle.loads((corpus / "CS-Mage_fulldata.pkl").read_bytes())
    assert table["id"] == [f"video_1_{n}" for n in range(1, 7)] and table["verified"] == [False] * 6
    for start, (a, _b) in zip(table["start"], rec.speech, strict=True):
        assert a - 0.3 <= start <= a + 0.1
    assert "UNVERIFIED" in (corpus / "README.md").read_text(encoding="utf-8")

    # a person corrects the draft; the pkl is rebuilt; asr prepare reads the folder as CS-Mage
    draft = (corpus / "draft.tsv").read_text(encoding="utf-8").splitlines()
    fixed = [draft[0]]
    for line, text in zip(draft[1:], rec.texts, strict=True):
        cells = line.split("\t")
        cells[1], cells[2] = "yes", text
        fixed.append("\t".join(cells))
    (corpus / "draft.tsv").write_text("\n".join(fixed) + "\n", encoding="utf-8")
    assert main(["segment", "--apply-draft", str(corpus)]) == 0
    assert (
        main(["prepare", "--data-root", str(corpus), "--out", str(tmp_path / "prep"), "--protocol", "random"])
        == 0
    )
    rows = [
        json.loads(line) for line in (tmp_path / "prep" / "manifests" / "all.jsonl").read_text().splitlines()
    ]
    assert sorted((r["id"], r["text"]) for r in rows) == sorted(
        (f"video_1_{n}", t) for n, t in enumerate(rec.texts, start=1)
    )
    # a rerun over the same recording skips it (clips and tables untouched)
    stamp = wavs[0].stat().st_mtime_ns
    assert main(args) == 0 and wavs[0].stat().st_mtime_ns == stamp
    assert pickle.loads((corpus / "CS-Mage_fulldata.pkl").read_bytes())["verified"] == [True] * 6
