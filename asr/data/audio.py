"""Audio reading, header inspection and extraction to 16 kHz mono WAV.

soundfile handles WAV/FLAC/OGG; anything else (mp4, mkv, m4a, mp3, ...) is decoded
with PyAV. Resampling uses soxr; downmixing averages the channels.

Audio is checked where it enters: a file that cannot be decoded is an :class:`AudioError`
that says why in words (an empty file, a truncated WAV header, an HTML page saved as
``.wav``...), not libsndfile's bare "System error."; samples that are NaN or infinite are a
:class:`NonFiniteAudioError` (:func:`load_audio` refuses them, :func:`check_finite` scans a
file without converting it; integer PCM cannot hold them and is not decoded).

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> stereo = np.zeros((4410, 2), dtype=np.float32)                  # 0.1 s at 44.1 kHz
>>> wav = write_wav(folder / "in.wav", stereo, sample_rate=44100)
>>> audio_info(wav)                                                 # from the header, no decode
AudioInfo(sample_rate=44100, channels=2, frames=4410, duration=0.1)
>>> load_audio(wav).shape                                           # float32 mono, 16 kHz
(1600,)
>>> audio_info(extract_audio(wav, folder / "out.wav")).sample_rate   # video files too
16000
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data.records import NON_FINITE_AUDIO, UNREADABLE_AUDIO
from asr.errors import DataError
from asr.io import atomic_write

# soundfile, PyAV and soxr are imported where used (together about a second): each loads only when a
# file needs it (soundfile for WAV/FLAC/OGG, PyAV for other containers, soxr to resample).

TARGET_SAMPLE_RATE = 16000
SOUNDFILE_SUFFIXES = frozenset({".wav", ".flac", ".ogg"})
# libsndfile subtypes that store integers: they cannot hold NaN or infinity.
_INTEGER_SUBTYPE_PREFIXES = ("PCM_", "ULAW", "ALAW", "IMA_ADPCM", "MS_ADPCM", "GSM610", "DWVW_", "DPCM_")
_SCAN_BLOCK = 1 << 16


class AudioError(DataError):
    """An audio file that cannot be used; ``problem`` is its suspects.csv problem name.

    The message is ``<path>: <reason>``; ``reason`` alone is kept for reports that name the
    file elsewhere.
    """

    problem = UNREADABLE_AUDIO

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = Path(path)
        self.reason = reason


class NonFiniteAudioError(AudioError):
    """Samples that are NaN or infinite (they would train a NaN model)."""

    problem = NON_FINITE_AUDIO


def _undecodable(path: Path, reason: str) -> AudioError:
    return AudioError(path, f"not a decodable audio file: {reason}")


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
            raise _undecodable(path, _sf_reason(path, err)) from err
        if info.samplerate <= 0:
            raise _undecodable(path, f"the header gives sample rate {info.samplerate}")
        return AudioInfo(info.samplerate, info.channels, int(info.frames), info.frames / info.samplerate)
    return _av_info(path)


def _av_info(path: Path) -> AudioInfo:
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioError(path, "no audio stream")
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
        raise _undecodable(path, _av_reason(path, err)) from err
    if rate <= 0:
        raise _undecodable(path, "unknown sample rate")
    frames = round(seconds * rate)
    return AudioInfo(rate, channels, frames, frames / rate)


def load_audio(path: str | Path, sample_rate: int = TARGET_SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to a float32 mono array in [-1, 1] at ``sample_rate`` Hz.

    :class:`AudioError` if it cannot be decoded, :class:`NonFiniteAudioError` if a sample is
    NaN or infinite.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: audio file not found")
    if _uses_soundfile(path):
        import soundfile as sf

        try:
            data, rate = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception as err:
            raise _undecodable(path, _sf_reason(path, err)) from err
        _require_finite(path, data)
        mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    else:
        mono, rate = _av_decode(path)
        _require_finite(path, mono)
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
                raise AudioError(path, "no audio stream")
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
        raise _undecodable(path, _av_reason(path, err)) from err
    if not chunks or rate <= 0:
        raise _undecodable(path, "no decodable audio frames")
    data = np.concatenate(chunks, axis=1)
    return data.mean(axis=0).astype(np.float32), rate


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = TARGET_SAMPLE_RATE) -> Path:
    """Write PCM_16 WAV atomically (one channel per column of a 2-D ``samples``)."""
    import soundfile as sf

    # Encoded in memory first: soundfile swallows the OSError of a full disk inside its write
    # callback and fails with a bare AssertionError; a plain file write raises the real error.
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype="PCM_16", format="WAV")
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return Path(path)


def extract_audio(src: str | Path, dst: str | Path, sample_rate: int = TARGET_SAMPLE_RATE) -> Path:
    """Decode the audio of ``src`` (video or audio file) to a 16-bit mono WAV at ``dst``."""
    return write_wav(dst, load_audio(src, sample_rate), sample_rate)


def check_finite(path: str | Path) -> None:
    """Raise :class:`NonFiniteAudioError` if ``path`` (WAV/FLAC/OGG) holds a NaN or infinite sample.

    Files stored as integers (PCM, A-law, ...) cannot, and are not decoded; float files are
    scanned block by block without converting them. Other containers are checked when
    :func:`load_audio` decodes them.
    """
    path = Path(path)
    if not _uses_soundfile(path):
        return
    import soundfile as sf

    try:
        subtype = sf.info(str(path)).subtype
        if subtype.startswith(_INTEGER_SUBTYPE_PREFIXES):
            return
        bad, total, first = 0, 0, -1
        for block in sf.blocks(str(path), blocksize=_SCAN_BLOCK, dtype="float64", always_2d=True):
            finite = np.isfinite(block).all(axis=1)
            if not finite.all():
                first = first if first >= 0 else total + int(np.argmin(finite))
                bad += int(block.shape[0] - finite.sum())
            total += block.shape[0]
    except Exception as err:
        raise _undecodable(path, _sf_reason(path, err)) from err
    if bad:
        raise NonFiniteAudioError(path, _non_finite_reason(bad, total, first))


def _require_finite(path: Path, samples: np.ndarray) -> None:
    """``samples``: ``(frames,)`` or ``(frames, channels)``."""
    finite = np.isfinite(samples)
    if not finite.all():
        frames = finite.all(axis=1) if samples.ndim == 2 else finite
        bad = int(frames.size - frames.sum())
        raise NonFiniteAudioError(path, _non_finite_reason(bad, frames.size, int(np.argmin(frames))))


def _non_finite_reason(bad: int, total: int, first: int) -> str:
    return f"{bad} of {total} samples are not finite (NaN or infinity; the first is sample {first})"


def _short(err: Exception) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:200]


# libsndfile messages that say nothing about the file itself.
_VAGUE = ("System error", "Format not recognised", "unknown error", "Internal error")


def _sf_reason(path: Path, err: Exception) -> str:
    """Why soundfile could not open ``path``: what the file looks like, plus libsndfile's detail."""
    detail = str(getattr(err, "error_string", "") or _short(err)).strip()
    looks = _sniff(path)
    if not detail or any(vague.lower() in detail.lower() for vague in _VAGUE):
        return looks
    return f"{looks}; {detail.rstrip('.')}"


def _av_reason(path: Path, err: Exception) -> str:
    return f"{_sniff(path)}; {_short(err)}"


def _sniff(path: Path) -> str:
    """What the first bytes of ``path`` say it is, in words, with its size."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(64)
    except OSError as err:
        return f"cannot read it ({err.strerror or err})"
    if size == 0:
        return "the file is empty (0 bytes)"
    sized = f"{size} bytes"
    # A container other than its suffix says: named here so the user can rename or convert it.
    misnamed = f"saved as {path.suffix} ({sized}); give it its real suffix or convert it to WAV"
    if head[:4] in (b"RIFF", b"RIFX", b"RF64") and head[8:12] == b"WAVE":
        return f"a WAV file with a damaged, cut-short or unsupported header ({sized})"
    if head[:4] == b"fLaC":
        return f"a damaged or cut-short FLAC file ({sized})"
    if head[:4] == b"OggS":
        return f"an Ogg file with a damaged or unsupported stream ({sized})"
    if head[4:8] == b"ftyp":
        if _uses_soundfile(path):
            return f"an MP4/M4A/MOV container {misnamed}"
        return f"an MP4/M4A/MOV container whose audio cannot be decoded ({sized})"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0):
        return (
            f"MP3 data {misnamed}" if _uses_soundfile(path) else f"MP3 data that cannot be decoded ({sized})"
        )
    if head[:4] == b"PK\x03\x04":
        return f"a zip archive, not audio ({sized})"
    if not head.strip(b"\x00"):
        return f"only zero bytes, no audio header ({sized})"
    if _looks_like_text(head):
        preview = head.decode("utf-8", errors="ignore").strip().splitlines()[0][:40]
        return f"text, not audio ({sized}; starts with {preview!r})"
    return f"an unrecognised format ({sized}; starts with {head[:8].hex(' ')})"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:  # not just a character cut at the end of the sample
            return False
        text = head[: err.start].decode("utf-8")
    return bool(text) and all(c.isprintable() or c in "\r\n\t" for c in text)
