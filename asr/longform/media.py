"""Streaming decode of any container PyAV reads, as 16 kHz mono float32 blocks.

The whole file is never held: packets are decoded one at a time, downmixed by averaging the
channels and resampled with soxr (HQ, the resampler :func:`asr.data.audio.load_audio` uses),
so memory stays at one block whatever the file's length.

>>> import tempfile
>>> from asr.data.audio import write_wav
>>> wav = write_wav(Path(tempfile.mkdtemp()) / "a.wav", np.zeros(44100, np.float32), 44100)
>>> [len(b) for b in stream_audio(wav, block_samples=6000)]
[6000, 6000, 4000]
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from asr.data.audio import TARGET_SAMPLE_RATE, AudioError, NonFiniteAudioError, audio_info

BLOCK_SAMPLES = 1 << 15  # about 2 s at 16 kHz


def probe_duration(path: Path) -> float:
    """Seconds of audio from the header; an :class:`AudioError` naming the file if unusable."""
    return audio_info(path).duration


def _frames(path: Path) -> Iterator[tuple[np.ndarray, int]]:
    """``(mono float32 samples, sample rate)`` per decoded frame."""
    import av  # PyAV and soxr take about a second to import: loaded when media is read

    try:
        container = av.open(str(path))
    except Exception as err:
        raise AudioError(path, f"not a decodable audio file: {err}") from err
    with container:
        if not container.streams.audio:
            raise AudioError(path, "no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp")
        seconds = 0.0
        try:
            for packet in container.demux(stream):
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        seconds += out.samples / out.sample_rate
                        yield out.to_ndarray().mean(axis=0, dtype=np.float32), out.sample_rate
            for out in resampler.resample(None):
                yield out.to_ndarray().mean(axis=0, dtype=np.float32), out.sample_rate
        except AudioError:
            raise
        except Exception as err:
            raise AudioError(path, f"decoding failed after {seconds:.1f} s: {err}") from err


def stream_audio(path: str | Path, block_samples: int = BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """16 kHz mono float32 blocks of ``block_samples`` (the last one shorter), in [-1, 1]."""
    import soxr

    path = Path(path)
    resampler: soxr.ResampleStream | None = None
    rate = 0
    pending: list[np.ndarray] = []
    held = 0
    position = 0
    for samples, frame_rate in _frames(path):
        if resampler is None and frame_rate != TARGET_SAMPLE_RATE:
            resampler = soxr.ResampleStream(frame_rate, TARGET_SAMPLE_RATE, 1, dtype="float32", quality="HQ")
        if rate and frame_rate != rate:
            raise AudioError(path, f"the sample rate changes mid-stream ({rate} -> {frame_rate} Hz)")
        rate = frame_rate
        out = samples if resampler is None else resampler.resample_chunk(samples)
        pending.append(out)
        held += out.size
        while held >= block_samples:
            block, pending, held = _take(pending, block_samples)
            yield _checked(path, block, position)
            position += block.size
    if resampler is not None:
        pending.append(resampler.resample_chunk(np.zeros(0, np.float32), last=True))
    rest = np.concatenate(pending) if pending else np.zeros(0, np.float32)
    for start in range(0, rest.size, block_samples):
        block = rest[start : start + block_samples]
        yield _checked(path, block, position)
        position += block.size
    if position == 0:
        raise AudioError(path, "no decodable audio frames")


def _take(pending: list[np.ndarray], n: int) -> tuple[np.ndarray, list[np.ndarray], int]:
    joined = np.concatenate(pending)
    return joined[:n], [joined[n:]], joined.size - n


def _checked(path: Path, block: np.ndarray, position: int) -> np.ndarray:
    finite = np.isfinite(block)
    if not finite.all():
        at = (position + int(np.argmin(finite))) / TARGET_SAMPLE_RATE
        raise NonFiniteAudioError(path, f"samples are not finite (NaN or infinity) at {at:.2f} s")
    return np.clip(block, -1.0, 1.0).astype(np.float32, copy=False)
