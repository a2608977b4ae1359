"""The bundled demo corpus (``demo/``) and its generator ``tools/make_demo.py``."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import re
import shutil
import wave
import zipfile
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from asr.cli import run_recipe
from asr.data.demo_sentences import DEMO_LINES, DEMO_SENTENCES, PARTICLES
from asr.errors import ASRError, ConfigError
from asr.text.normalize import normalize
from tools import make_demo as md


def make_demo_cli(argv: list[str]) -> int:
    """``python -m tools.make_demo ARGS`` in process."""
    return run_recipe(md, argv, prog="python -m tools.make_demo")


REPO = Path(__file__).resolve().parents[3]
DEMO = REPO / "demo"
CORPUS = DEMO / "cs-mage-demo"
SHARED = REPO.parent / "shared" / "cs-mage"
HAS_ESPEAK = shutil.which("espeak-ng") is not None
MEMBER = re.compile(r"^audio_wav/(\d{2})_(\d{4})\.wav$")
needs_espeak = pytest.mark.skipif(
    not HAS_ESPEAK, reason="espeak-ng is not on PATH (apt-get install -y espeak-ng; CI installs it)"
)


class _NoClasses(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"class {module}.{name} not allowed")


def _load_table() -> dict:
    with (CORPUS / "CS-Mage_fulldata.pkl").open("rb") as f:
        return _NoClasses(f).load()


def _stem(clip_id: str) -> str:
    _, v, c = clip_id.split("_")
    return f"{int(v):02d}_{int(c):04d}"


def _manifest() -> dict:
    return json.loads((DEMO / "manifest.json").read_text(encoding="utf-8"))


def _same_tools() -> bool:
    if not HAS_ESPEAK or not (DEMO / "manifest.json").is_file():
        return False
    m = _manifest()
    return (m["espeak_ng"], m["zlib"], m["av"]) == (
        md.espeak_version(),
        zlib.ZLIB_RUNTIME_VERSION,
        av.__version__,
    )


SAME_TOOLS = _same_tools()


# --- the committed files -------------------------------------------------------------------------


def test_zip_members_are_the_cs_mage_layout():
    with zipfile.ZipFile(CORPUS / "audio_wav.zip") as zf:
        infos = zf.infolist()
    names = [i.filename for i in infos]
    assert len(names) == 120
    assert names == sorted(names)
    assert all(MEMBER.match(n) for n in names), [n for n in names if not MEMBER.match(n)]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_DEFLATED}
    assert {i.date_time for i in infos} == {md.ZIP_DATE}
    assert {MEMBER.match(n).group(1) for n in names} == {"01", "02", "03", "04"}


def test_pkl_is_plain_and_matches_the_zip():
    table = _load_table()
    assert set(table) == {"id", "raw_text", "speaker"}
    ids, texts, speakers = table["id"], table["raw_text"], table["speaker"]
    assert all(type(v) is list for v in table.values())
    assert len(ids) == len(texts) == len(speakers) == len(set(ids)) == 120
    assert all(re.fullmatch(r"video_[1-9]\d?_[1-9]\d*", i) for i in ids)
    with zipfile.ZipFile(CORPUS / "audio_wav.zip") as zf:
        members = set(zf.namelist())
    assert {f"audio_wav/{_stem(i)}.wav" for i in ids} == members
    assert all(t in DEMO_SENTENCES and t[-1] in "，。！？" for t in texts)
    for text in set(texts):
        assert texts.count(text) == 2
        assert len({s for t, s in zip(texts, speakers, strict=True) if t == text}) == 2


def test_pkl_matches_the_generator_plan():
    table = _load_table()
    plan = md.plan_clips(DEMO_LINES, md.SPEAKERS, 2)
    assert table["id"] == [c.id for c in plan]
    assert table["raw_text"] == [c.sentence.text for c in plan]
    assert table["speaker"] == [c.speaker.name for c in plan]


def test_member_audio_is_16k_16bit_mono_and_not_silent(tmp_path):
    with zipfile.ZipFile(CORPUS / "audio_wav.zip") as zf:
        path = Path(zf.extract("audio_wav/04_0007.wav", tmp_path))
        durations = []
        for name in zf.namelist():
            with wave.open(io.BytesIO(zf.read(name))) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2), name
                durations.append(w.getnframes() / 16000)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
    audio, _ = sf.read(str(path), dtype="int16")
    lead = audio[: int(md.PAD_SECONDS * 16000)]
    assert np.any(lead != 0), "leading pad is digitally silent"
    assert np.abs(lead).max() < 200, "leading pad should be low-level noise"
    assert np.sqrt(np.mean(audio.astype(float) ** 2)) > 500
    assert min(durations) > 1.0 and max(durations) <= md.MAX_SECONDS
    assert sum(durations) == pytest.approx(_manifest()["seconds"], abs=0.01)


def test_videos_decode_to_speech():
    lines = (DEMO / "videos" / "transcripts.txt").read_text(encoding="utf-8").splitlines()
    pairs = [line.split(" ", 1) for line in lines]
    mp4s = sorted(p.stem for p in (DEMO / "videos").glob("*.mp4"))
    assert [s for s, _ in pairs] == mp4s and len(mp4s) == 6
    for stem, text in pairs:
        assert re.fullmatch(r"9\d_\d{4}", stem) and text in DEMO_SENTENCES
        with av.open(str(DEMO / "videos" / f"{stem}.mp4")) as container:
            video = container.streams.video[0]
            assert (video.codec_context.width, video.codec_context.height) == (64, 64)
            assert container.streams.audio[0].codec_context.name == "aac"
            chunks = [f.to_ndarray() for f in container.decode(audio=0)]
            rate = container.streams.audio[0].codec_context.sample_rate
        audio = np.concatenate(chunks, axis=-1).reshape(-1)
        assert rate == 16000
        assert 1.0 < audio.size / rate < md.MAX_SECONDS + 0.2
        assert np.sqrt(np.mean(audio**2)) > 0.01, stem


def test_demo_folder_is_small():
    size = sum(p.stat().st_size for p in DEMO.rglob("*") if p.is_file())
    assert size < 10_000_000


# --- the sentences -------------------------------------------------------------------------------


def test_sentences_are_colloquial_changsha_style():
    texts = [normalize(t) for t in DEMO_SENTENCES]
    assert len(texts) == len(set(texts)) == 60
    assert all(4 <= len(t) <= 15 for t in texts)
    for particle in PARTICLES:
        assert sum(particle in t for t in texts) >= 3, particle
    assert sum(any(p in t for p in PARTICLES) for t in texts) >= 0.9 * len(texts)
    for word in ("么子", "冇得", "恰饭", "要得", "伢唧", "策"):
        assert any(word in t for t in texts), word


def test_pinyin_has_one_toned_syllable_per_character():
    for line in DEMO_LINES:
        syllables = re.findall(r"[a-z]+[1-5]", line.pinyin)
        assert len(syllables) == len(normalize(line.text)), line
        assert re.fullmatch(r"[a-z1-5 ,.?!]+", line.pinyin), line


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"shared CS-Mage metadata not found at {SHARED}")
def test_no_sentence_overlaps_a_cs_mage_transcript():
    corpus = set()
    for name in ("transcripts_1085_plain.txt", "transcripts_1085_punct.txt"):
        for line in (SHARED / name).read_text(encoding="utf-8").splitlines():
            if " " in line:
                corpus.add(normalize(line.split(" ", 1)[1]))
    corpus.discard("")
    assert len(corpus) > 1000
    clashes = [(s, c) for s in map(normalize, DEMO_SENTENCES) for c in corpus if s in c or c in s]
    assert clashes == []


# --- the generator -------------------------------------------------------------------------------


def test_plan_gives_each_sentence_to_consecutive_speakers():
    clips = md.plan_clips(DEMO_LINES, md.SPEAKERS, 2)
    assert len(clips) == 120
    by_text: dict[str, list[int]] = {}
    for clip in clips:
        by_text.setdefault(clip.sentence.text, []).append(clip.video)
    assert all(len(v) == 2 and len(set(v)) == 2 for v in by_text.values())
    assert [sum(c.video == v for c in clips) for v in (1, 2, 3, 4)] == [30, 30, 30, 30]
    videos = md.plan_videos(DEMO_LINES, md.SPEAKERS, 6, 2)
    assert {c.video for c in videos} == {90, 91, 92, 93}
    for clip in videos:
        assert clip.video - 89 not in by_text[clip.sentence.text]


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigError, match="per-sentence"):
        md.plan_clips(DEMO_LINES, md.SPEAKERS[:1], 2)
    with pytest.raises(ConfigError, match="unknown speaker"):
        md.parse_speaker("nobody")
    with pytest.raises(ConfigError, match="integers"):
        md.parse_speaker("yue:fast:50")
    assert md.parse_speaker("yue:150:40").name == "yue-150-40"
    with pytest.raises(ConfigError, match="seed"):
        md.make_demo(Path("unused"), seed=-1)


def test_missing_espeak_names_the_apt_command(monkeypatch):
    monkeypatch.setattr(md.shutil, "which", lambda name: None)
    with pytest.raises(ASRError, match=r"apt-get install -y espeak-ng"):
        md.render_clip(md.plan_clips(DEMO_LINES[:1], md.SPEAKERS, 1)[0])


@needs_espeak
def test_missing_voice_is_a_clear_error():
    with pytest.raises(ASRError, match="voice 'no-such-voice' is not installed"):
        md.check_voices([md.parse_speaker("no-such-voice:150:50")])
    md.check_voices(md.SPEAKERS)


@needs_espeak
def test_one_clip_is_non_silent_16k_speech():
    samples, rate = md.synthesize(DEMO_LINES[0].pinyin, md.SPEAKERS[1])
    assert rate == 22050 and samples.dtype == np.float32
    audio = md.finish_clip(samples, rate, "02_0001")
    assert audio.dtype == np.int16
    assert 1.0 < audio.size / 16000 < md.MAX_SECONDS
    assert np.sqrt(np.mean(audio.astype(float) ** 2)) > 500


@needs_espeak
def test_three_clips_are_deterministic():
    clips = md.plan_clips(DEMO_LINES, md.SPEAKERS, 2)
    picked = [clips[0], clips[45], clips[-1]]
    first = [md.wav_bytes(md.render_clip(c)) for c in picked]
    assert first == [md.wav_bytes(md.render_clip(c)) for c in picked]
    if SAME_TOOLS:
        with zipfile.ZipFile(CORPUS / "audio_wav.zip") as zf:
            assert first == [zf.read(f"audio_wav/{c.stem}.wav") for c in picked]


@needs_espeak
@pytest.mark.skipif(
    not SAME_TOOLS, reason="espeak-ng, zlib or PyAV differ from demo/manifest.json, so bytes may differ"
)
def test_regenerating_reproduces_the_committed_bytes(tmp_path):
    summary = md.make_demo(tmp_path)
    assert (summary.clips, summary.videos) == (120, 6)
    for name, digest in _manifest()["sha256"].items():
        committed = (DEMO / name).read_bytes()
        assert hashlib.sha256(committed).hexdigest() == digest, name
        assert (tmp_path / name).read_bytes() == committed, name
    assert (tmp_path / "manifest.json").read_bytes() == (DEMO / "manifest.json").read_bytes()


@needs_espeak
def test_cli_writes_a_custom_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = [
        "--out",
        str(out),
        "--speakers",
        "cmn-mid,yue",
        "--per-sentence",
        "1",
        "--videos",
        "1",
    ]
    assert make_demo_cli(argv) == 0
    assert "60 clips" in capsys.readouterr().out
    with (out / "cs-mage-demo" / "CS-Mage_fulldata.pkl").open("rb") as f:
        table = _NoClasses(f).load()
    assert table["speaker"].count("cmn-mid") == table["speaker"].count("yue") == 30
    assert [p.name for p in (out / "videos").glob("*.mp4")] == ["90_0001.mp4"]
    assert make_demo_cli(["--out", str(out), "--speakers", "nosuch:150:50"]) == 2
    assert "voice 'nosuch' is not installed" in capsys.readouterr().err
    assert make_demo_cli(["--out", str(out), "--speakers", "yue", "--per-sentence", "2"]) == 2
    assert "--per-sentence must be between 1 and the number of speakers (1)" in capsys.readouterr().err
