"""Tier markers from the folder, the ``one_thread`` fixture, and shared data: synthetic audio,
video clips, Kaldi folders and a tiny CS-Mage distribution."""

from __future__ import annotations

import pickle
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

SHARED_CS_MAGE = Path(__file__).resolve().parents[1].parent / "shared" / "cs-mage"
TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "e2e", "reliability", "real", "slow")  # one folder each under tests/
BROWSER_FILES = {"test_html_report.py", "test_serve_page.py"}  # drive a headless chromium
GPU_PATH_FILES = {"test_gpu_paths.py", "test_train_gpu_paths.py"}  # CPU stand-ins for the GPU-only paths


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection sees the items
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its tier (its folder under tests/), ``browser`` and ``gpu_paths``."""
    for item in items:
        path = Path(item.path)
        if not path.is_relative_to(TESTS):
            continue
        tier = path.relative_to(TESTS).parts[0]
        if tier in TIERS:
            item.add_marker(tier)
        if path.name in BROWSER_FILES:
            item.add_marker("browser")
        if path.name in GPU_PATH_FILES:
            item.add_marker("gpu_paths")


def _signal(seconds: float, sample_rate: int, channels: int, freq: float) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    rng = np.random.default_rng(round(freq))
    tone = 0.3 * np.sin(2 * np.pi * freq * t) + 0.01 * rng.standard_normal(t.size)
    return np.stack([tone] * channels, axis=1).astype(np.float32)


def write_wav(
    path: Path, seconds: float = 1.0, sample_rate: int = 16000, channels: int = 1, freq: float = 220.0
) -> Path:
    """A sine tone with a little noise as 16-bit WAV."""
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), _signal(seconds, sample_rate, channels, freq), sample_rate, subtype="PCM_16")
    return path


def write_video(path: Path, seconds: float = 1.0, sample_rate: int = 16000, video: bool = True) -> Path:
    """An AAC audio track (optionally with a tiny H.264/MPEG-4 picture) muxed with PyAV."""
    return mux_media(path, _signal(seconds, sample_rate, 1, 330.0)[:, 0], sample_rate, video)


def mux_media(
    path: Path, samples: np.ndarray | None, sample_rate: int = 16000, video: bool = True, seconds: float = 1.0
) -> Path:
    """Mono ``samples`` as AAC (none: no audio stream), plus a tiny picture track when ``video``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    if samples is not None:
        seconds = samples.size / sample_rate
    with av.open(str(path), "w") as container:
        audio = None
        if samples is not None:
            audio = container.add_stream("aac", rate=sample_rate)
            audio.layout = "mono"
        picture = None
        if video:
            codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
            picture = container.add_stream(codec, rate=10)
            picture.width, picture.height, picture.pix_fmt = 32, 32, "yuv420p"
        if audio is not None:
            for start in range(0, samples.size, 1024):
                frame = av.AudioFrame.from_ndarray(
                    samples[None, start : start + 1024], format="fltp", layout="mono"
                )
                frame.sample_rate, frame.pts = sample_rate, start
                container.mux(audio.encode(frame))
            container.mux(audio.encode(None))
        if picture is not None:
            for index in range(max(1, round(seconds * 10))):
                image = av.VideoFrame.from_ndarray(
                    np.full((32, 32, 3), index * 20 % 256, np.uint8), format="rgb24"
                )
                image.pts = index
                container.mux(picture.encode(image))
            container.mux(picture.encode(None))
    return path


def write_kaldi(root: Path, wav_scp: str, text: str) -> Path:
    """A Kaldi data folder ``root`` (created) with these ``wav.scp`` and ``text`` contents."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "wav.scp").write_text(wav_scp, encoding="utf-8")
    (root / "text").write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One intra-op torch thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``):
    tiny models gain nothing from threads, and on a busy 2-core machine they run 10-40x slower
    with two; subprocess runs get ``OMP_NUM_THREADS=1`` likewise."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def make_wav() -> Callable[..., Path]:
    return write_wav


@pytest.fixture
def make_video() -> Callable[..., Path]:
    return write_video


@dataclass
class CsMageCorpus:
    root: Path
    ok: list[str]  # ids that must reach the manifests
    excluded: dict[str, str]  # id -> problem that keeps it out
    flagged: dict[str, set[str]]  # id -> problems flagged while kept


# (pkl id, wav spec or None for a missing member, transcript). Spec: (seconds, rate, channels) or "corrupt".
CSMAGE_ROWS = [
    ("video_1_1", (1.0, 16000, 1), "今天天气蛮好咯"),
    ("video_1_2", (1.0, 8000, 2), "你吃饭了冒"),
    ("video_1_3", "corrupt", "我们去长沙"),
    ("video_1_4", None, "这个没有音频"),
    ("video_2_1", (1.0, 16000, 1), ""),
    ("video_2_2", (1.0, 16000, 1), "<笑>好咯好咯"),
    ("video_2_3", (0.5, 16000, 1), "一二三四五六七八九十一二三四五六七八九十"),
    ("video_2_4", (1.0, 16000, 1), "……"),
    ("video_3_1", (0.8, 16000, 1), "长沙的米粉"),
    ("video_3_2", (1.2, 16000, 1), "岳麓山好高"),
    ("video_3_3", (0.9, 16000, 1), "湘江边上散步"),
    ("video_3_4", (1.1, 16000, 1), "臭豆腐蛮香"),
]
CSMAGE_EXTRA_WAV = "99_0001"  # in the zip, not in the pkl


def build_csmage(root: Path, *, packed: bool = True, pkl_name: str = "CS-Mage_fulldata.pkl") -> CsMageCorpus:
    """Write ``audio_wav.zip`` (or ``audio_wav/``) and the pkl for :data:`CSMAGE_ROWS` under ``root``."""
    from asr.data.csmage import to_source_id

    staging = root / "audio_wav" if not packed else root / "_staging" / "audio_wav"
    staging.mkdir(parents=True, exist_ok=True)
    for index, (utt_id, spec, _) in enumerate(CSMAGE_ROWS):
        target = staging / f"{to_source_id(utt_id)}.wav"
        if spec == "corrupt":
            target.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" + bytes(range(40)))
        elif spec is not None:
            seconds, rate, channels = spec
            write_wav(target, seconds, rate, channels, freq=200.0 + 10 * index)
    write_wav(staging / f"{CSMAGE_EXTRA_WAV}.wav", 0.7)
    if packed:
        with zipfile.ZipFile(root / "audio_wav.zip", "w") as archive:
            archive.writestr("audio_wav/", "")
            for wav in sorted(staging.iterdir()):
                archive.write(wav, f"audio_wav/{wav.name}")
            archive.writestr("__MACOSX/audio_wav/._01_0001.wav", b"resource fork")
        for wav in staging.iterdir():
            wav.unlink()
        staging.rmdir()
        staging.parent.rmdir()
    data = {
        "id": np.array([row[0] for row in CSMAGE_ROWS]),
        "raw_text": np.array([row[2] for row in CSMAGE_ROWS], dtype=object),
        "split": ["train"] * len(CSMAGE_ROWS),
    }
    (root / pkl_name).write_bytes(pickle.dumps(data, protocol=4))
    return CsMageCorpus(
        root=root,
        ok=["video_1_1", "video_1_2", "video_2_2", "video_2_3", "video_3_1", "video_3_2", "video_3_3", "video_3_4"],
        excluded={
            "video_1_3": "unreadable_audio",
            "video_1_4": "missing_audio",
            "video_2_1": "empty_text",
            "video_2_4": "empty_after_normalization",
            "video_99_1": "no_transcript",
        },
        flagged={"video_1_2": {"wrong_sample_rate", "wrong_channels"}, "video_2_2": {"markup"},
                 "video_2_3": {"implausible_cps"}},
    )  # fmt: skip


@pytest.fixture
def csmage_corpus(tmp_path: Path) -> CsMageCorpus:
    """A CS-Mage distribution (zip + pkl) with one case of each problem; see :data:`CSMAGE_ROWS`."""
    return build_csmage(tmp_path / "CS-Mage")
