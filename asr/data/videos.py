"""Corpus layout ``video``: a folder of clips whose audio is extracted to 16 kHz mono WAV.

Clips: ``.mp4 .mkv .mov .webm .avi .flv .m4a`` directly in the folder. Transcripts:
``transcripts.txt`` there (``<stem> <text>`` lines), else ``CS-Mage_fulldata.pkl`` in the
folder or its parent. Stems like ``01_0001`` become ids ``video_1_1``; other stems are ids.

>>> result = read_videos(Path("clips"), audio_dir=Path("prepared/audio"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from asr.data.audio import extract_audio
from asr.data.csmage import find_pkl, read_fulldata_pkl
from asr.data.id_text import first_by_id
from asr.data.ids import canonical_id
from asr.data.records import (
    DUPLICATE_ID,
    MISSING_AUDIO,
    NO_TRANSCRIPT,
    UNREADABLE_AUDIO,
    Candidate,
    ReadResult,
    keep_first,
)
from asr.errors import DataError

VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".webm", ".avi", ".flv", ".m4a"})
TRANSCRIPTS_NAME = "transcripts.txt"


def read_videos(root: Path, audio_dir: Path) -> ReadResult:
    """Extract each clip's audio to ``audio_dir/<stem>.wav`` (skipped when newer than the clip)."""
    clips = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not clips:
        raise DataError(f"{root}: no video clips ({' '.join(sorted(VIDEO_SUFFIXES))})")
    result = ReadResult("video", sources=[str(root)])
    transcripts = _video_transcripts(root, result)
    found: dict[str, Path] = {}
    for clip in clips:
        utt_id, source_id = canonical_id(clip.stem)
        if utt_id in found:
            result.flag(utt_id, str(clip), DUPLICATE_ID, f"same id as {found[utt_id].name}")
            continue
        found[utt_id] = clip
        if utt_id not in transcripts:
            result.flag(
                utt_id, str(clip), NO_TRANSCRIPT, f"no transcript for {clip.stem} in {result.sources[-1]}"
            )
            continue
        target = audio_dir / f"{clip.stem}.wav"
        if not (target.is_file() and target.stat().st_mtime >= clip.stat().st_mtime):
            try:
                extract_audio(clip, target)
            except DataError as err:  # undecodable, or NaN / infinite samples (err.problem)
                result.flag(utt_id, str(clip), getattr(err, "problem", UNREADABLE_AUDIO), str(err))
                continue
        text, origin = transcripts[utt_id]
        result.candidates.append(
            Candidate(utt_id, source_id, target.resolve(), text, "video", text_origin=origin,
                      extra={"video": str(clip.resolve())})
        )  # fmt: skip
    for utt_id, (_, origin) in transcripts.items():
        if utt_id not in found:
            result.flag(utt_id, origin, MISSING_AUDIO, f"transcript without a video clip in {root}")
    return result


def _video_transcripts(root: Path, result: ReadResult) -> dict[str, tuple[str, str]]:
    """``id -> (text, origin)`` from ``transcripts.txt``, else from a CS-Mage pkl."""
    txt = root / TRANSCRIPTS_NAME
    if txt.is_file():
        result.sources.append(str(txt))
        transcripts: dict[str, tuple[str, str]] = {}
        for raw_id, (text, line) in first_by_id(txt, result.suspects).items():
            transcripts.setdefault(canonical_id(raw_id)[0], (text, f"{txt}:{line}"))
        return transcripts
    pkl = find_pkl(root, root.parent)
    if pkl is None:
        raise DataError(
            f"{root}: no transcripts for the video clips; expected {TRANSCRIPTS_NAME} "
            "(lines '<stem> <text>') in that folder or CS-Mage_fulldata.pkl beside it"
        )
    result.sources.append(str(pkl))
    entries = read_fulldata_pkl(pkl)
    rows = ((canonical_id(e.id)[0], f"{pkl}[{e.line}]", (e.text, f"{pkl}[{e.line}]")) for e in entries)
    return keep_first(rows, result.suspects, lambda _: "repeated id in the pkl")
