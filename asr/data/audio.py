"""Audio reading, header inspection and extraction to 16 kHz mono WAV.

soundfile handles WAV/FLAC/OGG; anything else (mp4, mkv, m4a, mp3, ...) is decoded
with PyAV. Resampling uses soxr; downmixing averages the channels.

>>> x = load_audio("audio_wav/01_0001.wav")            # float32 mono, 16 kHz
>>> audio_info("audio_wav/01_0001.wav").duration        # from the header, no decode
>>> extract_audio("clips/01_0001.mp4", "out/audio/01_0001.wav")
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.errors import DataError

TARGET_SAMPLE_RATE = 16000
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})


@dataclass(frozen=True)
class AudioInfo:
    """Header facts about one audio file; ``duration`` is in seconds."""

    sample_rate: int
    channels: int
    frames: int
    duration: float


def _uses_soundfile(path: Path) -> bool:
    return path.suffix.lower() in SOUNDFILE_SUFFIXES


def audio_info(path: str | Path) -> AudioInfo:
    """Sample rate, channels and length from the file header.

    WAV/FLAC/OGG are read with soundfile (header only). For other containers the
    numbers come from PyAV's stream metadata and the frame count may be approximate.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    if _uses_soundfile(path):
        import soundfile as sf

        try:
            info = sf.info(str(path))
        except Exception as err:
            raise DataError(f"{path}: unreadable audio ({_short(err)})") from err
        if info.samplerate <= 0:
            raise DataError(f"{path}: unreadable audio (sample rate {info.samplerate})")
        return AudioInfo(info.samplerate, info.channels, int(info.frames), info.frames / info.samplerate)
    return _av_info(path)


def _av_info(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DataError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate or 0)
            channels = int(stream.layout.nb_channels if stream.layout else stream.channels)
            if stream.duration is not None and stream.time_base is not None:
                seconds = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                seconds = container.duration / av.time_base
            else:
                seconds = 0.0
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{path}: unreadable audio ({_short(err)})") from err
    if rate <= 0:
        raise DataError(f"{path}: unreadable audio (unknown sample rate)")
    frames = round(seconds * rate)
    return AudioInfo(rate, channels, frames, frames / rate)


def load_audio(path: str | Path, sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to a float32 mono array in [-1, 1] at ``sample_rate`` Hz."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    if _uses_soundfile(path):
        import soundfile as sf

        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:
            raise DataError(f"{path}: unreadable audio ({_short(err)})") from err
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    else:
        mono, rate = _av_decode(path)
    if rate != sample_rate and mono.size:
        import soxr

        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.clip(np.ascontiguousarray(mono, dtype=np.float32), -1.0, 1.0)


def _av_decode(path: Path) -> tuple[np.ndarray, int]:
    import av

    chunks: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise DataError(f"{path}: no audio stream")
            stream = container.streams.audio[0]
            # Planar float keeps the channels apart, so the downmix below is a plain mean.
            resampler = av.AudioResampler(format="fltp")
            rate = 0
            for frame in container.decode(stream):
                rate = rate or frame.sample_rate
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray())
    except DataError:
        raise
    except Exception as err:
        raise DataError(f"{path}: unreadable audio ({_short(err)})") from err
    if not chunks or rate <= 0:
        raise DataError(f"{path}: unreadable audio (no decodable audio frames)")
    data = np.concatenate(chunks, axis=1)
    return data.mean(axis=0).astype(np.float32), rate


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = TARGET_SAMPLE_RATE) -> Path:
    """Write mono PCM_16 WAV atomically (temporary file in the same folder, then rename)."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        sf.write(str(tmp), samples, sample_rate, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def extract_audio(src: str | Path, dst: str | Path, sample_rate: int = TARGET_SAMPLE_RATE) -> Path:
    """Decode the audio of ``src`` (video or audio file) to a 16-bit mono WAV at ``dst``."""
    return write_wav(dst, load_audio(src, sample_rate), sample_rate)


def _short(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:200]
