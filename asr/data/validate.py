"""Checks on candidate utterances, and the data reports written by ``asr prepare``.

Left out of the manifests: missing or undecodable audio, audio with NaN or infinite
samples (``non_finite_audio``), clips shorter than :data:`MIN_DURATION` (``too_short``),
ids, transcripts or audio paths that are not valid Unicode (``invalid_text``: lone
surrogates, or transcript bytes that are not UTF-8), empty text (also empty after
normalization: there would be nothing to score), duplicate ids. Converted and flagged:
wrong sample rate or channel count (resampled/downmixed into ``audio_dir/converted``).
Flagged only: markup in the text, implausible characters per second.

>>> import tempfile
>>> import numpy as np
>>> from asr.data.audio import write_wav
>>> folder = Path(tempfile.mkdtemp())
>>> wav = write_wav(folder / "a.wav", np.zeros(16000, dtype=np.float32))
>>> checked = check_candidates(
...     [Candidate("u1", "u1", wav, "<笑>好咯好咯", "kaldi"), Candidate("u2", "u2", wav, "...", "kaldi")],
...     audio_dir=folder / "audio",
... )
>>> [(u.id, u.duration, u.text_norm) for u in checked.utterances]
[('u1', 1.0, '笑好咯好咯')]
>>> [(s.id, s.problem, s.detail) for s in checked.suspects]
[('u1', 'markup', '<笑>'), ('u2', 'empty_after_normalization', "'...' has no CJK, digits or letters")]
>>> print(write_suspects_csv(folder / "suspects.csv", checked.suspects).read_text(encoding="utf-8"), end="")
id,file,problem,detail
u1,,markup,<笑>
u2,,empty_after_normalization,"'...' has no CJK, digits or letters"
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.audio import SOUNDFILE_SUFFIXES, TARGET_SAMPLE_RATE, audio_info, check_finite, extract_audio
from asr.data.manifest import Utterance
from asr.data.records import (
    DUPLICATE_ID,
    EMPTY_AFTER_NORMALIZATION,
    EMPTY_TEXT,
    EXCLUDING,
    IMPLAUSIBLE_CPS,
    INVALID_TEXT,
    LONGER_THAN_WINDOW,
    MARKUP,
    MISSING_AUDIO,
    PROBLEMS,
    TOO_SHORT,
    UNREADABLE_AUDIO,
    WRONG_CHANNELS,
    WRONG_SAMPLE_RATE,
    Candidate,
    Suspect,
)
from asr.data.text_files import describe_bad_bytes
from asr.errors import DataError
from asr.io import write_text
from asr.text.normalize import normalize

# Clips shorter than this (seconds) are left out as ``too_short``: a fraction of a syllable
# cannot hold a transcript (CS-Mage clips run about 1-30 s; the shortest are well over 0.5 s).
MIN_DURATION = 0.1
# Clips longer than this are reported (and kept): Whisper's fixed window, cut into windows when decoded.
WINDOW_SECONDS = 30.0

# Normalized characters per second outside these bounds are flagged (Changsha speech runs ~3-7).
CPS_MIN = 0.5
CPS_MAX = 12.0
MARKUP_PATTERN = re.compile(r"<[^<>]*>|\[[^\[\]]*\]|\{[^{}]*\}")
SUSPECT_COLUMNS = ("id", "file", "problem", "detail")


@dataclass
class CheckResult:
    """Utterances that passed (``split`` as found, usually None) and everything flagged."""

    utterances: list[Utterance] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    converted: int = 0


def check_candidates(
    candidates: Iterable[Candidate], audio_dir: Path, sample_rate: int = TARGET_SAMPLE_RATE
) -> CheckResult:
    """Check audio and text of each candidate; build manifest rows for the usable ones."""
    result = CheckResult()
    seen: dict[str, str] = {}
    for cand in candidates:
        invalid = _invalid_fields(cand)
        if invalid:
            result.suspects.append(
                Suspect(cand.id, cand.text_origin or str(cand.audio), INVALID_TEXT, invalid)
            )
            continue
        if cand.id in seen:
            detail = f"id already used by {seen[cand.id]}"
            result.suspects.append(Suspect(cand.id, str(cand.audio), DUPLICATE_ID, detail))
            continue
        seen[cand.id] = cand.text_origin or str(cand.audio)
        text = cand.text.strip()
        if not text:
            result.suspects.append(Suspect(cand.id, cand.text_origin, EMPTY_TEXT, "transcript is empty"))
            continue
        text_norm = normalize(text)
        if not text_norm:
            detail = f"{text!r} has no CJK, digits or letters"
            result.suspects.append(Suspect(cand.id, cand.text_origin, EMPTY_AFTER_NORMALIZATION, detail))
            continue
        audio = _checked_audio(cand, audio_dir, sample_rate, result)
        if audio is None:
            continue
        path, duration = audio
        for found in dict.fromkeys(MARKUP_PATTERN.findall(text)):
            result.suspects.append(Suspect(cand.id, cand.text_origin, MARKUP, found))
        cps = len(text_norm) / duration
        if not CPS_MIN <= cps <= CPS_MAX:
            detail = f"{cps:.2f} chars/s ({len(text_norm)} chars in {duration:.3f} s; plausible {CPS_MIN}-{CPS_MAX})"
            result.suspects.append(Suspect(cand.id, str(cand.audio), IMPLAUSIBLE_CPS, detail))
        if duration > WINDOW_SECONDS:
            detail = (f"{duration:.1f} s, longer than Whisper's {WINDOW_SECONDS:.0f} s window: kept; asr evaluate "
                      "decodes it in windows cut at pauses")  # fmt: skip
            result.suspects.append(Suspect(cand.id, str(cand.audio), LONGER_THAN_WINDOW, detail))
        extra = {"source_id": cand.source_id, "format": cand.format, **cand.extra}
        result.utterances.append(Utterance(cand.id, str(path), duration, text, text_norm, cand.split, extra))
    return result


def _checked_audio(
    cand: Candidate, audio_dir: Path, sample_rate: int, result: CheckResult
) -> tuple[Path, float] | None:
    """``(path, duration)`` of usable audio (converted when needed), or None after flagging."""
    source = cand.audio
    if not source.is_file():
        result.suspects.append(Suspect(cand.id, str(source), MISSING_AUDIO, "audio file not found"))
        return None
    try:
        info = audio_info(source)
        check_finite(source)
    except DataError as err:
        result.suspects.append(Suspect(cand.id, str(source), _audio_problem(err), str(err)))
        return None
    problems = []
    if info.sample_rate != sample_rate:
        problems.append((WRONG_SAMPLE_RATE, f"{info.sample_rate} Hz"))
    if info.channels != 1:
        problems.append((WRONG_CHANNELS, f"{info.channels} channels"))
    path = source
    if problems or source.suffix.lower() not in SOUNDFILE_SUFFIXES:
        path = _converted_path(audio_dir, cand.id)
        try:
            if not (path.is_file() and path.stat().st_mtime >= source.stat().st_mtime):
                extract_audio(source, path, sample_rate)
            info = audio_info(path)
        except DataError as err:
            result.suspects.append(Suspect(cand.id, str(source), _audio_problem(err), str(err)))
            return None
        for problem, found in problems:
            detail = f"{found}; converted to {sample_rate} Hz mono: {path}"
            result.suspects.append(Suspect(cand.id, str(source), problem, detail))
    seconds = info.frames / info.sample_rate
    if info.frames <= 0 or seconds < MIN_DURATION:
        shown = f"{seconds:.7f}".rstrip("0").rstrip(".")
        detail = f"{shown} s ({info.frames} samples at {info.sample_rate} Hz); clips shorter than {MIN_DURATION} s are left out"
        result.suspects.append(Suspect(cand.id, str(source), TOO_SHORT, detail))
        return None
    result.converted += path != source
    return path.resolve(), round(seconds, 6)


def _audio_problem(err: DataError) -> str:
    """The suspects.csv problem of an audio error: ``non_finite_audio`` or ``unreadable_audio``."""
    return str(getattr(err, "problem", UNREADABLE_AUDIO))


def _invalid_fields(cand: Candidate) -> str:
    """Why the id, transcript or audio path of ``cand`` cannot be written as UTF-8 ("" if they can)."""
    for what, value in (("id", cand.id), ("transcript", cand.text), ("audio path", str(cand.audio))):
        why = invalid_unicode(value)
        if why:
            return f"{what} {why}"
    return ""


def invalid_unicode(value: str) -> str:
    """Why ``value`` is not valid Unicode text ("" if it is).

    Lone surrogates come from a pkl or JSON that holds them, or stand for bytes that were not
    UTF-8 (a reader decodes such bytes with ``surrogateescape``, never with replacement
    characters); the latter are described with the encoding they look like.

    >>> invalid_unicode("好\\ud800咯")
    'holds a lone surrogate U+D800 at character 1 (not valid Unicode text)'
    >>> invalid_unicode("长沙".encode("gbk").decode("utf-8", "surrogateescape"))
    'is bytes that are not UTF-8 (invalid start byte at byte 0, line 1); it looks like GB18030 (GBK)'
    """
    try:
        value.encode("utf-8")
        return ""
    except UnicodeEncodeError as err:
        first = err.start
    try:
        raw = value.encode("utf-8", "surrogateescape")
        raw.decode("utf-8")
    except UnicodeEncodeError:
        pass
    except UnicodeDecodeError as err:
        return f"is bytes that are not UTF-8 {describe_bad_bytes(raw, err, advice=False)}"
    return f"holds a lone surrogate U+{ord(value[first]):04X} at character {first} (not valid Unicode text)"


def _converted_path(audio_dir: Path, utt_id: str) -> Path:
    return audio_dir / "converted" / f"{safe_stem(utt_id)}.wav"


def safe_stem(utt_id: str) -> str:
    """``utt_id`` usable as a file name (other characters become ``_``, plus a hash of the id).

    >>> safe_stem("video_1_1"), safe_stem("spk 1/utt")
    ('video_1_1', 'spk_1_utt-d249a946')
    """
    safe = re.sub(r"[^\w.-]", "_", utt_id)
    if safe != utt_id:
        safe += "-" + hashlib.sha1(utt_id.encode()).hexdigest()[:8]
    return safe


# Reports ---------------------------------------------------------------------------------


def duration_stats(durations: Sequence[float]) -> dict[str, float]:
    """min / mean / median / max in seconds (zeros for an empty list)."""
    if not durations:
        return {"min": 0.0, "mean": 0.0, "median": 0.0, "max": 0.0}
    return {
        "min": round(min(durations), 6),
        "mean": round(statistics.fmean(durations), 6),
        "median": round(statistics.median(durations), 6),
        "max": round(max(durations), 6),
    }


def build_report(
    splits: Mapping[str, Sequence[Utterance]],
    suspects: Sequence[Suspect],
    *,
    data_root: Path | str,
    layout: str,
    sources: Sequence[str],
    provenance: Mapping[str, Any],
    candidates: int,
    converted: int,
    listed_not_in_data: Mapping[str, str],
    not_listed: Sequence[str],
) -> dict[str, Any]:
    """Content of ``data_validation.json``."""
    rows = [u for part in splits.values() for u in part]
    by_problem = Counter(s.problem for s in suspects)
    per_split = {name: list(part) for name, part in splits.items()}
    per_split["all"] = rows
    return {
        "data_root": str(data_root.resolve()) if isinstance(data_root, Path) else data_root,
        "layout": layout,
        "sources": list(sources),
        "formats_seen": sorted({str(u.extra.get("format", layout)) for u in rows}),
        "protocol": provenance.get("protocol"),
        "split_provenance": dict(provenance),
        "counts": {name: len(part) for name, part in per_split.items()},
        "hours": {
            name: round(sum(u.duration or 0.0 for u in part) / 3600, 4) for name, part in per_split.items()
        },
        "duration_seconds": {
            name: duration_stats([u.duration or 0.0 for u in part]) for name, part in per_split.items()
        },
        "candidates": candidates,
        "converted_audio": converted,
        "suspects": {
            "total": len(suspects),
            "ids": len({s.id for s in suspects}),
            "excluded_ids": len({s.id for s in suspects if s.problem in EXCLUDING}),
            "by_problem": {p: by_problem[p] for p in PROBLEMS if by_problem[p]},
        },
        "missing_ids": {
            "in_split_files_not_in_data": dict(sorted(listed_not_in_data.items())),
            "in_data_not_in_split_files": sorted(not_listed),
        },
    }


def write_suspects_csv(path: Path, suspects: Iterable[Suspect]) -> Path:
    """Write suspects.csv (columns id, file, problem, detail) atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=SUSPECT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for suspect in suspects:
        writer.writerow({key: printable(value) for key, value in suspect.as_row().items()})
    return write_text(path, buffer.getvalue())


def printable(value: str) -> str:
    """``value`` with lone surrogates spelled ``\\udc80``, so it can be written as UTF-8."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8")
