"""Checks on candidate utterances, and the data reports written by ``asr prepare``.

Left out of the manifests: missing or unreadable audio, empty text (also empty after
normalization: there would be nothing to score), duplicate ids. Converted and flagged:
wrong sample rate or channel count (resampled/downmixed into ``audio_dir/converted``).
Flagged only: markup in the text, implausible characters per second.

>>> checked = check_candidates(result.candidates, audio_dir=Path("prepared/audio"))
>>> write_suspects_csv(Path("prepared/reports/suspects.csv"), checked.suspects)
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import statistics
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.audio import SOUNDFILE_SUFFIXES, TARGET_SAMPLE_RATE, audio_info, extract_audio
from asr.data.manifest import Utterance
from asr.data.records import (
    DUPLICATE_ID,
    EMPTY_AFTER_NORMALIZATION,
    EMPTY_TEXT,
    EXCLUDING,
    IMPLAUSIBLE_CPS,
    MARKUP,
    MISSING_AUDIO,
    PROBLEMS,
    UNREADABLE_AUDIO,
    WRONG_CHANNELS,
    WRONG_SAMPLE_RATE,
    Candidate,
    Suspect,
)
from asr.errors import DataError
from asr.text.normalize import normalize

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
    except DataError as err:
        result.suspects.append(Suspect(cand.id, str(source), UNREADABLE_AUDIO, str(err)))
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
            result.suspects.append(Suspect(cand.id, str(source), UNREADABLE_AUDIO, str(err)))
            return None
        for problem, found in problems:
            detail = f"{found}; converted to {sample_rate} Hz mono: {path}"
            result.suspects.append(Suspect(cand.id, str(source), problem, detail))
    if info.frames <= 0:
        result.suspects.append(Suspect(cand.id, str(source), UNREADABLE_AUDIO, "no audio samples"))
        return None
    result.converted += path != source
    return path.resolve(), round(info.frames / info.sample_rate, 6)


def _converted_path(audio_dir: Path, utt_id: str) -> Path:
    safe = re.sub(r"[^\w.-]", "_", utt_id)
    if safe != utt_id:
        safe += "-" + hashlib.sha1(utt_id.encode()).hexdigest()[:8]
    return audio_dir / "converted" / f"{safe}.wav"


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
    data_root: Path,
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
        "data_root": str(data_root.resolve()),
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
        writer.writerow(suspect.as_row())
    return _write_text(path, buffer.getvalue())


def write_json(path: Path, obj: Any) -> Path:
    """Write pretty UTF-8 JSON atomically."""
    return _write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def _write_text(path: Path, content: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_text(content, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
