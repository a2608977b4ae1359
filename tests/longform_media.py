"""Synthetic long recordings for the long-form tests: demo clips (espeak-ng speech) joined by pauses."""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO = Path(__file__).resolve().parents[1] / "demo" / "cs-mage-demo"
RATE = 16000


@dataclass
class Recording:
    """Joined audio, each clip's speech ``(start, end)`` in seconds, and its transcript."""

    audio: np.ndarray
    speech: list[tuple[float, float]]
    texts: list[str]


def demo_clips(count: int) -> list[tuple[np.ndarray, str]]:
    """The first ``count`` demo clips (16 kHz float32) with their transcripts."""
    import soundfile as sf

    table = pickle.loads((DEMO / "CS-Mage_fulldata.pkl").read_bytes())
    texts = dict(zip(table["id"], table["raw_text"], strict=True))
    out = []
    with zipfile.ZipFile(DEMO / "audio_wav.zip") as archive:
        names = sorted(n for n in archive.namelist() if n.endswith(".wav"))
        for name in names[:count]:
            wave, _ = sf.read(io.BytesIO(archive.read(name)), dtype="float32")
            stem = name.rsplit("/", 1)[-1][:-4]
            out.append((wave, texts[f"video_{int(stem[:2])}_{int(stem[3:])}"]))
    return out


def speech_extent(wave: np.ndarray, level: float = 0.02) -> tuple[int, int]:
    """First and last sample of 10 ms frames whose peak exceeds ``level`` (the clip's speech)."""
    frames = wave[: wave.size // 160 * 160].reshape(-1, 160)
    loud = np.flatnonzero(np.abs(frames).max(axis=1) > level)
    return int(loud[0]) * 160, (int(loud[-1]) + 1) * 160


def join(
    clips: list[tuple[np.ndarray, str]],
    pauses: list[float],
    noise: float = 0.002,
    lead: float = 1.0,
    seed: int = 0,
) -> Recording:
    """``lead`` s of silence, then each clip followed by its pause (cycled), with Gaussian noise."""
    parts, speech, at = [np.zeros(round(lead * RATE), np.float32)], [], round(lead * RATE)
    for i, (wave, _) in enumerate(clips):
        a, b = speech_extent(wave)
        speech.append(((at + a) / RATE, (at + b) / RATE))
        gap = np.zeros(round(pauses[i % len(pauses)] * RATE), np.float32)
        parts += [wave, gap]
        at += wave.size + gap.size
    audio = np.concatenate(parts)
    audio += noise * np.random.default_rng(seed).standard_normal(audio.size).astype(np.float32)
    return Recording(audio, speech, [t for _, t in clips])


def write_media(path: Path, audio: np.ndarray, video: bool = False, rate: int = RATE) -> Path:
    """AAC in an MP4/M4A container (with a tiny picture track when ``video``)."""
    from tests.conftest import mux_media

    return mux_media(path, audio, rate, video)


_TIME = r"(\d{2}):(\d{2}):(\d{2})[,.](\d{3})"


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_cues(text: str, kind: str) -> list[tuple[float, float, str]]:
    """Parse SRT (``kind="srt"``) or WebVTT strictly; AssertionError on any malformed block."""
    import re

    sep = "," if kind == "srt" else "."
    if kind == "vtt":
        assert text.startswith("WEBVTT\n\n"), text[:20]
        text = text[len("WEBVTT\n\n") :]
    timing = re.compile(f"^{_TIME} --> {_TIME}$".replace("[,.]", re.escape(sep)))
    cues = []
    for n, block in enumerate(b for b in text.split("\n\n") if b.strip()):
        lines = block.strip("\n").split("\n")
        if kind == "srt":
            assert lines.pop(0) == str(n + 1), block
        match = timing.match(lines[0])
        assert match and len(lines) == 2 and lines[1].strip(), block
        cues.append((_seconds(*match.groups()[:4]), _seconds(*match.groups()[4:]), lines[1]))
    return cues
