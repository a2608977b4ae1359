"""Regenerate the bundled demo corpus (``demo/``) with espeak-ng speech.

The demo mirrors the CS-Mage distribution so every loader and recipe can run on it:

- ``<out>/cs-mage-demo/audio_wav.zip``: members ``audio_wav/VV_CCCC.wav`` (16 kHz, 16-bit, mono);
- ``<out>/cs-mage-demo/CS-Mage_fulldata.pkl``: ``{"id": [...], "raw_text": [...], "speaker": [...]}``;
- ``<out>/videos/VV_CCCC.mp4`` (V >= 90) with ``<out>/videos/transcripts.txt``;
- ``<out>/manifest.json``: tool versions, settings and the SHA-256 of every file above.

Each "speaker" is an espeak-ng voice with a speed and a pitch; speaker *k* is video ``k + 1``, and
each sentence of :mod:`asr.data.demo_sentences` is spoken by ``--per-sentence`` consecutive speakers.
The output is byte-for-byte deterministic for a given espeak-ng, zlib and PyAV.

Example::

    make make-demo                 # python -m tools.make_demo --out demo
    python -m tools.make_demo --out /tmp/demo --speakers cmn-mid,yue --videos 2
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import logging
import pickle
import shutil
import subprocess
import sys
import tempfile
import wave
import zipfile
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from asr.data.demo_sentences import DEMO_LINES, DemoSentence
from asr.errors import ASRError, ConfigError
from asr.io import write_bytes, write_text

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
PAD_SECONDS = 0.15
NOISE_DBFS = -72.0
MAX_SECONDS = 8.0
FIRST_VIDEO_NUMBER = 90
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
INSTALL_HINT = "install it with: apt-get update && apt-get install -y espeak-ng"
PINYIN_VOICE = "cmn-latn-pinyin"


# --- speakers and the clip plan ------------------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    """An espeak-ng voice (``voice[+variant]``) at a speed (words per minute) and pitch (0-99).

    Voices based on ``cmn-latn-pinyin`` are fed the sentence's pinyin, all others its characters.

    >>> Speaker("x", "cmn-latn-pinyin+f2", 190, 70).reads_pinyin
    True
    """

    name: str
    voice: str
    wpm: int
    pitch: int
    colour: tuple[int, int, int] = (40, 40, 40)

    @property
    def reads_pinyin(self) -> bool:
        return self.voice.split("+", 1)[0].lower() == PINYIN_VOICE

    def text_for(self, sentence: DemoSentence) -> str:
        return sentence.pinyin if self.reads_pinyin else sentence.text


SPEAKERS: tuple[Speaker, ...] = (
    Speaker("cmn-slow-low", "cmn-latn-pinyin+m3", 145, 30, (150, 30, 30)),
    Speaker("cmn-mid", "cmn-latn-pinyin", 175, 50, (30, 120, 30)),
    Speaker("cmn-fast-high", "cmn-latn-pinyin+f2", 210, 72, (30, 60, 160)),
    Speaker("yue", "yue+f1", 175, 50, (150, 120, 20)),
)


def parse_speaker(spec: str) -> Speaker:
    """A built-in speaker by name, or a custom one written ``voice:wpm:pitch[:name]``.

    >>> parse_speaker("yue:150:40:yue-low")
    Speaker(name='yue-low', voice='yue', wpm=150, pitch=40, colour=(40, 40, 40))
    """
    for speaker in SPEAKERS:
        if spec == speaker.name:
            return speaker
    parts = spec.split(":")
    if len(parts) not in (3, 4) or not parts[0]:
        known = ", ".join(s.name for s in SPEAKERS)
        raise ConfigError(f"unknown speaker {spec!r}: use one of {known} or voice:wpm:pitch[:name]")
    try:
        wpm, pitch = int(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"speaker {spec!r}: wpm and pitch must be integers") from None
    if not (80 <= wpm <= 450 and 0 <= pitch <= 99):
        raise ConfigError(f"speaker {spec!r}: wpm must be in 80..450 and pitch in 0..99")
    name = parts[3] if len(parts) == 4 and parts[3] else f"{parts[0]}-{wpm}-{pitch}"
    return Speaker(name, parts[0], wpm, pitch)


@dataclass(frozen=True)
class Clip:
    """One utterance: video ``video`` (1-based speaker slot, or >= 90 for mp4s), clip ``clip``."""

    video: int
    clip: int
    speaker: Speaker
    sentence: DemoSentence

    @property
    def id(self) -> str:
        """The CS-Mage v2 id, e.g. ``video_1_1``."""
        return f"video_{self.video}_{self.clip}"

    @property
    def stem(self) -> str:
        """The CS-Mage v1 id and file stem, e.g. ``01_0001``."""
        return f"{self.video:02d}_{self.clip:04d}"


def plan_clips(
    sentences: Sequence[DemoSentence], speakers: Sequence[Speaker], per_sentence: int = 2
) -> list[Clip]:
    """Sentence *i* goes to speakers ``i, i+1, ... (mod n)``; clips are numbered per speaker.

    >>> [c.id for c in plan_clips(DEMO_LINES[:2], SPEAKERS[:2], 2)]
    ['video_1_1', 'video_1_2', 'video_2_1', 'video_2_2']
    """
    if not speakers:
        raise ConfigError("no speakers given")
    if len({s.name for s in speakers}) != len(speakers):
        raise ConfigError("speaker names must be distinct")
    if len(speakers) >= FIRST_VIDEO_NUMBER:
        raise ConfigError(f"at most {FIRST_VIDEO_NUMBER - 1} speakers (video numbers 90+ are the mp4s)")
    if not 1 <= per_sentence <= len(speakers):
        raise ConfigError(f"--per-sentence must be between 1 and the number of speakers ({len(speakers)})")
    counters = [0] * len(speakers)
    clips = []
    for i, sentence in enumerate(sentences):
        for k in range(per_sentence):
            slot = (i + k) % len(speakers)
            counters[slot] += 1
            clips.append(Clip(slot + 1, counters[slot], speakers[slot], sentence))
    return sorted(clips, key=lambda c: (c.video, c.clip))


def plan_videos(
    sentences: Sequence[DemoSentence], speakers: Sequence[Speaker], count: int = 6, per_sentence: int = 2
) -> list[Clip]:
    """``count`` clips for the mp4s: speakers in turn, each on a sentence (near evenly spaced ones)
    that it does not speak in the audio corpus, when there is a speaker left over for that.

    Video number is ``90 + speaker slot``, so the ids never clash with the audio clips.

    >>> [(c.stem, c.speaker.name) for c in plan_videos(DEMO_LINES, SPEAKERS, 2)]
    [('90_0001', 'cmn-slow-low'), ('91_0001', 'cmn-mid')]
    """
    if not speakers:
        raise ConfigError("no speakers given")
    if count < 0 or count > len(sentences):
        raise ConfigError(f"--videos must be between 0 and {len(sentences)}")
    if len(speakers) > 100 - FIRST_VIDEO_NUMBER:
        raise ConfigError(f"videos support at most {100 - FIRST_VIDEO_NUMBER} speakers")
    n = len(speakers)
    used: set[int] = set()
    counters: dict[int, int] = {}
    clips = []
    for j in range(count):
        slot = j % n
        candidates = [(j * len(sentences) // count + k) % len(sentences) for k in range(len(sentences))]
        free = [i for i in candidates if i not in used]
        # Held out: slot is not among the speakers i, ..., i + per_sentence - 1 (mod n) of sentence i.
        i = next((i for i in free if (slot - i) % n >= per_sentence), free[0])
        used.add(i)
        video = FIRST_VIDEO_NUMBER + slot
        counters[video] = counters.get(video, 0) + 1
        clips.append(Clip(video, counters[video], speakers[slot], sentences[i]))
    return sorted(clips, key=lambda c: (c.video, c.clip))


# --- synthesis -----------------------------------------------------------------------------------


def espeak_binary() -> str:
    """Path of ``espeak-ng``, or an :class:`ASRError` naming the apt command."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise ASRError(f"espeak-ng is not on PATH; {INSTALL_HINT}")
    return path


def espeak_version() -> str:
    """The espeak-ng version, e.g. ``"1.51"``."""
    out = subprocess.run([espeak_binary(), "--version"], capture_output=True, text=True, check=False).stdout
    words = out.split()
    return words[words.index("text-to-speech:") + 1] if "text-to-speech:" in words else out.strip()


def check_voices(speakers: Iterable[Speaker]) -> None:
    """Fail with a clear :class:`ASRError` if a speaker's voice or variant is not installed."""
    binary = espeak_binary()

    def listing(arg: str) -> set[str]:
        out = subprocess.run([binary, arg], capture_output=True, text=True, check=False).stdout
        names = set()
        for line in out.splitlines()[1:]:
            cols = line.split()
            if len(cols) >= 5:
                names.update({cols[1].lower(), cols[4].rsplit("/", 1)[-1].lower()})
        return names

    voices, variants = listing("--voices"), listing("--voices=variant")
    for speaker in speakers:
        base, _, variant = speaker.voice.partition("+")
        if base.lower() not in voices:
            raise ASRError(
                f"speaker {speaker.name!r}: espeak-ng voice {base!r} is not installed "
                f"(see `espeak-ng --voices`); {INSTALL_HINT}"
            )
        if variant and variant.lower() not in variants:
            raise ASRError(
                f"speaker {speaker.name!r}: espeak-ng variant {variant!r} is not installed "
                "(see `espeak-ng --voices=variant`)"
            )


def synthesize(text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
    """Speak ``text`` with espeak-ng; returns float32 mono samples and their rate (22050 Hz).

    Example: ``synthesize("ni3 hao3", SPEAKERS[1])`` is about half a second of "你好".
    """
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="make_demo_") as tmp:
        path = Path(tmp) / "speech.wav"
        cmd = [espeak_binary(), "-v", speaker.voice, "-s", str(speaker.wpm), "-p", str(speaker.pitch)]
        proc = subprocess.run(
            [*cmd, "-b", "1", "--stdin", "-w", str(path)],
            input=text.encode("utf-8"),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0 or not path.exists():
            msg = proc.stderr.decode("utf-8", "replace").strip()
            raise ASRError(f"espeak-ng failed for speaker {speaker.name!r} on {text!r}: {msg}")
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    if samples.shape[0] == 0 or not np.any(samples):
        raise ASRError(f"espeak-ng produced silence for speaker {speaker.name!r} on {text!r}")
    return samples.mean(axis=1), int(rate)


def finish_clip(
    samples: np.ndarray,
    rate: int,
    key: str,
    seed: int = 0,
    pad_seconds: float = PAD_SECONDS,
    max_seconds: float = MAX_SECONDS,
) -> np.ndarray:
    """Resample to 16 kHz, trim edge silence, pad, add seeded low-level noise; returns int16.

    The noise (about -72 dBFS, seeded by ``seed`` and ``key``) keeps clips from being digitally silent.
    """
    import soxr

    x = np.asarray(samples, dtype=np.float64)
    if rate != SAMPLE_RATE:
        x = soxr.resample(x, rate, SAMPLE_RATE, quality="HQ")
    loud = np.flatnonzero(np.abs(x) > 1e-3)
    if loud.size:
        x = x[loud[0] : loud[-1] + 1]
    pad = np.zeros(round(pad_seconds * SAMPLE_RATE))
    x = np.concatenate([pad, x, pad])
    limit = round(max_seconds * SAMPLE_RATE)
    if x.size > limit:
        log.warning("clip %s is %.2f s; trimmed to %.2f s", key, x.size / SAMPLE_RATE, max_seconds)
        fade = min(160, limit)
        x = x[:limit]
        x[-fade:] *= np.linspace(1.0, 0.0, fade)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode("utf-8"))])
    x = x + rng.normal(0.0, 10 ** (NOISE_DBFS / 20), x.size)
    return np.round(np.clip(x, -1.0, 1.0) * 32767).astype(np.int16)


def render_clip(clip: Clip, seed: int = 0, max_seconds: float = MAX_SECONDS) -> np.ndarray:
    """The finished 16 kHz int16 audio of one clip (synthesis plus :func:`finish_clip`)."""
    samples, rate = synthesize(clip.speaker.text_for(clip.sentence), clip.speaker)
    return finish_clip(samples, rate, clip.stem, seed, max_seconds=max_seconds)


def render_all(
    clips: Sequence[Clip], seed: int = 0, jobs: int = 2, max_seconds: float = MAX_SECONDS
) -> dict[str, np.ndarray]:
    """Audio of every clip keyed by stem; order-independent, so ``jobs`` does not change the result."""
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        audio = list(pool.map(lambda c: render_clip(c, seed, max_seconds), clips))
    return {clip.stem: a for clip, a in zip(clips, audio, strict=True)}


# --- writers -------------------------------------------------------------------------------------


def wav_bytes(audio: np.ndarray) -> bytes:
    """A minimal 44-byte-header PCM WAV (16 kHz, 16-bit, mono) of int16 ``audio``."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(np.asarray(audio, dtype="<i2").tobytes())
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    """A ZIP_DEFLATED archive with sorted members and fixed timestamps/attributes (reproducible)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name in sorted(members):
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, members[name], compresslevel=9)
    return buf.getvalue()


def write_corpus(out_dir: Path, clips: Sequence[Clip], audio: dict[str, np.ndarray]) -> list[Path]:
    """Write ``audio_wav.zip`` and ``CS-Mage_fulldata.pkl`` (protocol 4, plain lists) into ``out_dir``."""
    zip_path, pkl_path = out_dir / "audio_wav.zip", out_dir / "CS-Mage_fulldata.pkl"
    write_bytes(zip_path, zip_bytes({f"audio_wav/{c.stem}.wav": wav_bytes(audio[c.stem]) for c in clips}))
    table = {
        "id": [c.id for c in clips],
        "raw_text": [c.sentence.text for c in clips],
        "speaker": [c.speaker.name for c in clips],
    }
    write_bytes(pkl_path, pickle.dumps(table, protocol=4))
    return [zip_path, pkl_path]


def _encoder(names: Sequence[str]) -> str:
    import av

    for name in names:
        try:
            av.Codec(name, "w")
        except Exception:
            continue
        return name
    raise ASRError(f"PyAV has none of the encoders {', '.join(names)}; reinstall `av` from PyPI")


def mp4_bytes(audio: np.ndarray, colour: tuple[int, int, int], size: int = 64, fps: int = 5) -> bytes:
    """A small MP4: a solid ``colour`` H.264 (or MPEG-4) video and an AAC track of int16 16 kHz ``audio``."""
    import av

    vcodec, acodec = _encoder(["libx264", "mpeg4"]), _encoder(["aac"])
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4", options={"fflags": "+bitexact"}) as container:
        vstream = container.add_stream(vcodec, rate=fps)
        vstream.width = vstream.height = size
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.thread_count = 1
        if vcodec == "libx264":
            vstream.codec_context.options = {"preset": "medium", "crf": "30", "tune": "stillimage"}
        astream = container.add_stream(acodec, rate=SAMPLE_RATE, layout="mono")
        astream.codec_context.bit_rate = 32000
        for stream in (vstream, astream):
            stream.codec_context.flags |= av.codec.context.Flags.bitexact

        frame_size = 1024
        samples = np.asarray(audio, dtype=np.int16).astype(np.float32) / 32768.0
        for start in range(0, samples.size, frame_size):
            chunk = samples[start : start + frame_size]
            aframe = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
            aframe.sample_rate = SAMPLE_RATE
            aframe.pts = start
            aframe.time_base = Fraction(1, SAMPLE_RATE)
            container.mux(astream.encode(aframe))
        container.mux(astream.encode(None))

        picture = np.empty((size, size, 3), dtype=np.uint8)
        picture[:] = colour
        n_frames = max(1, int(np.ceil(samples.size / SAMPLE_RATE * fps)))
        for i in range(n_frames):
            vframe = av.VideoFrame.from_ndarray(picture, format="rgb24").reformat(format="yuv420p")
            vframe.pts = i
            vframe.time_base = Fraction(1, fps)
            container.mux(vstream.encode(vframe))
        container.mux(vstream.encode(None))
    return buf.getvalue()


def write_videos(videos_dir: Path, clips: Sequence[Clip], audio: dict[str, np.ndarray]) -> list[Path]:
    """Write one ``<stem>.mp4`` per clip and ``transcripts.txt`` (``<stem> <text>``); drop stale mp4s."""
    videos_dir.mkdir(parents=True, exist_ok=True)
    keep = {f"{c.stem}.mp4" for c in clips}
    for old in videos_dir.glob("[0-9][0-9]_[0-9][0-9][0-9][0-9].mp4"):
        if old.name not in keep:
            old.unlink()
    paths = []
    for clip in clips:
        path = videos_dir / f"{clip.stem}.mp4"
        write_bytes(path, mp4_bytes(audio[clip.stem], clip.speaker.colour))
        paths.append(path)
    transcripts = videos_dir / "transcripts.txt"
    write_text(transcripts, "".join(f"{c.stem} {c.sentence.text}\n" for c in clips))
    return [*paths, transcripts]


# --- the recipe ----------------------------------------------------------------------------------


@dataclass
class DemoSummary:
    """What :func:`make_demo` wrote."""

    clips: int
    seconds: float
    videos: int
    espeak_ng: str
    files: dict[str, int]  # path relative to the output folder -> size in bytes

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def make_demo(
    out: Path,
    speakers: Sequence[Speaker] = SPEAKERS,
    per_sentence: int | None = None,
    videos: int = 6,
    seed: int = 0,
    jobs: int = 2,
    sentences: Sequence[DemoSentence] = DEMO_LINES,
    *,
    corpus: str = "cs-mage-demo",
    max_seconds: float = MAX_SECONDS,
    generator: str = "tools/make_demo.py",
    source: dict | None = None,
) -> DemoSummary:
    """Generate the demo corpus under ``out`` (see the module docstring for the layout).

    ``per_sentence`` defaults to 2, or 1 with a single speaker. ``corpus`` names the folder of
    the zip and the pkl; ``source`` (where the sentences came from) goes into ``manifest.json``.
    """
    out = Path(out)
    if per_sentence is None:
        per_sentence = min(2, len(speakers))
    if seed < 0 or jobs < 1:
        raise ConfigError("--seed must be >= 0 and --jobs >= 1")
    clips = plan_clips(sentences, speakers, per_sentence)
    video_clips = plan_videos(sentences, speakers, videos, per_sentence)
    version = espeak_version()
    check_voices(speakers)
    log.info("synthesizing %d clips and %d videos with espeak-ng %s", len(clips), len(video_clips), version)
    audio = render_all([*clips, *video_clips], seed, jobs, max_seconds)
    written = write_corpus(out / corpus, clips, audio)
    if video_clips:
        written += write_videos(out / "videos", video_clips, audio)
    import av

    files = {p.relative_to(out).as_posix(): p for p in written}
    seconds = sum(audio[c.stem].size for c in clips) / SAMPLE_RATE
    manifest = {
        "generator": generator,
        **({"source": source} if source else {}),
        "espeak_ng": version,
        "zlib": zlib.ZLIB_RUNTIME_VERSION,
        "av": av.__version__,
        "seed": seed,
        "per_sentence": per_sentence,
        "speakers": [
            {"name": s.name, "voice": s.voice, "wpm": s.wpm, "pitch": s.pitch, "video": i + 1}
            for i, s in enumerate(speakers)
        ],
        "clips": len(clips),
        "seconds": round(seconds, 3),
        "videos": len(video_clips),
        "sha256": {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in sorted(files.items())},
    }
    write_text(out / "manifest.json", json.dumps(manifest, ensure_ascii=False, indent=1) + "\n")
    sizes = {name: p.stat().st_size for name, p in files.items()}
    sizes["manifest.json"] = (out / "manifest.json").stat().st_size
    return DemoSummary(len(clips), seconds, len(video_clips), version, sizes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("demo"), help="output folder (default: demo)")
    parser.add_argument(
        "--speakers",
        default=",".join(s.name for s in SPEAKERS),
        help="comma-separated built-in speaker names or voice:wpm:pitch[:name] (default: all built-in)",
    )
    parser.add_argument(
        "--per-sentence",
        type=int,
        default=None,
        help="speakers per sentence (default: 2, or 1 with one speaker)",
    )
    parser.add_argument("--videos", type=int, default=6, help="number of mp4 clips (default: 6)")
    parser.add_argument("--seed", type=int, default=0, help="noise seed (default: 0)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel espeak-ng processes (default: 2)")


def run(args: argparse.Namespace) -> int:
    speakers = [parse_speaker(s.strip()) for s in args.speakers.split(",") if s.strip()]
    summary = make_demo(args.out, speakers, args.per_sentence, args.videos, args.seed, args.jobs)
    print(
        f"{summary.clips} clips ({summary.seconds:.1f} s) and {summary.videos} videos "
        f"with espeak-ng {summary.espeak_ng}; {summary.total_bytes / 1e6:.2f} MB in {args.out}"
    )
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
