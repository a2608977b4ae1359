"""Corpus layouts other than the CS-Mage distribution, and layout auto-detection.

Layouts (``--format``):

- ``csmage``: ``audio_wav.zip`` or ``audio_wav/`` + ``CS-Mage_fulldata.pkl`` (:mod:`asr.data.csmage`)
- ``video``: a folder of clips with ``transcripts.txt`` or a CS-Mage pkl (:mod:`asr.data.videos`)
- ``kaldi``: ``wav.scp`` + ``text`` (+ optional ``utt2spk``); no ``segments``, no pipes
- ``funasr``: JSON lines with ``key``, ``source`` (audio path), ``target`` (text)
- ``manifest``: JSON lines with ``id``, ``audio``, ``text`` (and optionally ``split``)

Relative audio paths are resolved against the file that names them.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> _ = (root / "wav.scp").write_text("u1 u1.wav\\n", encoding="utf-8")
>>> _ = (root / "text").write_text("u1 好咯\\nu2 冇得\\n", encoding="utf-8")
>>> detect_format(root)
'kaldi'
>>> result = read_corpus(root, audio_dir=root / "audio")
>>> [(c.id, c.text, c.audio.name) for c in result.candidates]
[('u1', '好咯', 'u1.wav')]
>>> [(s.id, s.problem) for s in result.suspects]
[('u2', 'missing_audio')]
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from asr.data.csmage import AUDIO_FOLDER, ZIP_NAME, read_csmage
from asr.data.id_text import first_by_id, read_id_text_file
from asr.data.ids import canonical_id
from asr.data.records import MISSING_AUDIO, NO_TRANSCRIPT, Candidate, ReadResult
from asr.data.text_files import read_text_file
from asr.data.videos import VIDEO_SUFFIXES, read_videos
from asr.errors import ASRError, DataError
from asr.io import iter_jsonl

log = logging.getLogger(__name__)

FORMATS = ("csmage", "video", "kaldi", "funasr", "manifest")
EXPECTED_LAYOUTS = (
    "a CS-Mage folder (audio_wav.zip or audio_wav/ plus CS-Mage_fulldata.pkl), "
    "a folder of video clips (.mp4 .mkv .mov .webm .avi .flv .m4a) with transcripts.txt, "
    "a Kaldi folder (wav.scp + text), or a FunASR / manifest .jsonl file (or a folder of them)"
)


def detect_format(root: Path) -> str:
    """Name of the layout found at ``root``; ASRError naming the expected layouts otherwise."""
    if not root.exists():
        raise ASRError(f"--data-root {root} does not exist; expected {EXPECTED_LAYOUTS}")
    if root.is_file():
        if root.suffix.lower() == ".jsonl":
            kind = _jsonl_kind(root)
            if kind is None:
                raise DataError(f"--data-root {root}: empty .jsonl file")
            return kind
        raise ASRError(f"--data-root {root} is a file but not a .jsonl; expected {EXPECTED_LAYOUTS}")
    if (root / ZIP_NAME).is_file() or (root / AUDIO_FOLDER).is_dir():
        return "csmage"
    if (root / "wav.scp").is_file():
        return "kaldi"
    jsonl = _jsonl_files(root)
    if jsonl:
        kinds = {kind for kind in map(_jsonl_kind, jsonl) if kind is not None}
        if not kinds:
            raise DataError(f"--data-root {root}: all its .jsonl files are empty")
        if len(kinds) > 1:
            raise ASRError(f"{root}: mixes FunASR and manifest .jsonl files; pass one file or --format")
        return kinds.pop()
    if any(p.suffix.lower() in VIDEO_SUFFIXES for p in root.iterdir() if p.is_file()):
        return "video"
    hint = next((f" (did you mean {sub}?)" for sub in sorted(root.iterdir()) if _looks_like_corpus(sub)), "")
    raise ASRError(f"--data-root {root}: unknown corpus layout{hint}; expected {EXPECTED_LAYOUTS}")


def _looks_like_corpus(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in (ZIP_NAME, AUDIO_FOLDER, "wav.scp"))


def resolve_format(root: Path, fmt: str = "auto") -> str:
    """``fmt`` checked against ``root`` (which must exist); ``auto`` detects the layout."""
    if fmt == "auto":
        fmt = detect_format(root)
        log.info("%s: detected %s layout", root, fmt)
    elif not root.exists():
        raise ASRError(f"--data-root {root} does not exist; expected {EXPECTED_LAYOUTS}")
    if fmt not in FORMATS:
        raise ASRError(f"unknown --format {fmt!r}; choose auto or one of {', '.join(FORMATS)}")
    return fmt


def read_corpus(root: Path, audio_dir: Path, fmt: str = "auto") -> ReadResult:
    """Read the corpus at ``root`` in layout ``fmt`` (``auto`` detects it)."""
    readers: dict[str, Callable[[Path, Path], ReadResult]] = {
        "csmage": read_csmage,
        "video": read_videos,
        "kaldi": read_kaldi,
        "funasr": read_funasr,
        "manifest": read_manifests,
    }
    return readers[resolve_format(root, fmt)](root, audio_dir)


# JSON lines -------------------------------------------------------------------------------


def _jsonl_files(root: Path) -> list[Path]:
    """The .jsonl files of a folder (or of its ``manifests/`` subfolder, as ``asr prepare`` writes)."""
    if root.is_file():
        return [root]
    files = sorted(root.glob("*.jsonl"))
    if not files and (root / "manifests").is_dir():
        files = sorted((root / "manifests").glob("*.jsonl"))
    return files


def _iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`asr.io.iter_jsonl` on a file first checked to be UTF-8 (the error names the line
    and the encoding the file looks like)."""
    read_text_file(path)
    yield from iter_jsonl(path)


def _jsonl_kind(path: Path) -> str | None:
    """``funasr`` or ``manifest`` from the first line; None for an empty file."""
    for number, obj in _iter_jsonl(path):
        if {"key", "source", "target"} <= obj.keys():
            return "funasr"
        if {"id", "audio", "text"} <= obj.keys():
            return "manifest"
        raise ASRError(
            f"{path}:{number}: neither a FunASR line (key/source/target) nor a manifest line "
            f"(id/audio/text); found keys {sorted(obj)}"
        )
    return None


def _resolve(path_text: str, base: Path) -> Path:
    """The absolute audio path; a symlink loop stays unresolved (validation reports it as a suspect)."""
    path = Path(path_text).expanduser()
    path = path if path.is_absolute() else base / path
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # RuntimeError: Python < 3.13 on a symlink loop
        return Path(os.path.abspath(path))


def _require(obj: dict[str, Any], keys: tuple[str, ...], path: Path, number: int) -> None:
    missing = [key for key in keys if key not in obj]
    if missing:
        raise DataError(f"{path}:{number}: missing key(s) {', '.join(missing)}")


def read_funasr(root: Path, audio_dir: Path) -> ReadResult:
    """FunASR jsonl: ``key``, ``source``, ``target``; other keys (``source_len``...) kept as extras."""
    files = _jsonl_files(root)
    if not files:
        raise DataError(f"{root}: no .jsonl files (FunASR layout needs lines with key/source/target)")
    result = ReadResult("funasr", sources=[str(p) for p in files])
    for path in files:
        base = path.parent.resolve()
        for number, obj in _iter_jsonl(path):
            _require(obj, ("key", "source", "target"), path, number)
            utt_id, source_id = canonical_id(str(obj["key"]))
            extra = {k: v for k, v in obj.items() if k not in ("key", "source", "target")}
            result.candidates.append(
                Candidate(utt_id, source_id, _resolve(str(obj["source"]), base), _text(obj["target"]), "funasr",
                          text_origin=f"{path}:{number}", extra=extra)
            )  # fmt: skip
    return result


def read_manifests(root: Path, audio_dir: Path) -> ReadResult:
    """Our own manifests (``id``, ``audio``, ``text``, optional ``split``); extra keys are kept.

    In a folder holding ``all.jsonl`` next to the per-split files, only ``all.jsonl`` is read.
    """
    files = _jsonl_files(root)
    if not files:
        raise DataError(f"{root}: no .jsonl files (manifest layout needs lines with id/audio/text)")
    names = [p.name for p in files]
    if "all.jsonl" in names and len(files) > 1:
        files = [files[names.index("all.jsonl")]]
        log.info("%s: reading all.jsonl only (it holds every split)", files[0].parent)
    result = ReadResult("manifest", sources=[str(p) for p in files])
    dropped = {"id", "audio", "text", "split", "duration", "text_norm", "format", "source_id"}
    for path in files:
        base = path.parent.resolve()
        for number, obj in _iter_jsonl(path):
            _require(obj, ("id", "audio", "text"), path, number)
            utt_id, source_id = canonical_id(str(obj["id"]))
            split = obj.get("split")
            result.candidates.append(
                Candidate(
                    utt_id,
                    str(obj.get("source_id") or source_id),
                    _resolve(str(obj["audio"]), base),
                    _text(obj["text"]),
                    "manifest",
                    text_origin=f"{path}:{number}",
                    split=None if split in (None, "") else str(split),
                    extra={k: v for k, v in obj.items() if k not in dropped},
                )
            )
    return result


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# Kaldi ------------------------------------------------------------------------------------

_ARK_OFFSET = re.compile(r"\.ark:\d+$")


def read_kaldi(root: Path, audio_dir: Path) -> ReadResult:
    """Kaldi data folder: ``wav.scp`` (plain paths only) + ``text`` (+ ``utt2spk`` as ``speaker``)."""
    scp, text_file, utt2spk = root / "wav.scp", root / "text", root / "utt2spk"
    if not scp.is_file() or not text_file.is_file():
        raise DataError(f"{root}: Kaldi layout needs both wav.scp and text")
    if (root / "segments").exists():
        raise DataError(
            f"{root / 'segments'}: Kaldi segments are not supported; cut the segments into their own "
            "WAV files (e.g. with extract-segments or sox) and list those in wav.scp"
        )
    result = ReadResult("kaldi", sources=[str(scp), str(text_file)])
    texts = first_by_id(text_file, result.suspects)
    speakers = {row.id: row.text for row in read_id_text_file(utt2spk)} if utt2spk.is_file() else {}
    base = scp.parent.resolve()
    used: set[str] = set()
    for row in read_id_text_file(scp):
        location = row.text.strip()
        if not location:
            raise DataError(f"{scp}:{row.line}: no audio path for {row.id}")
        if location.endswith("|"):
            raise DataError(
                f"{scp}:{row.line}: piped command for {row.id} is not supported; "
                "write the audio to WAV files and list their paths in wav.scp"
            )
        if _ARK_OFFSET.search(location):
            raise DataError(f"{scp}:{row.line}: ark offsets are not supported; list plain audio file paths")
        utt_id, source_id = canonical_id(row.id)
        if row.id not in texts:
            result.flag(utt_id, location, NO_TRANSCRIPT, f"{row.id} is not in {text_file}")
            continue
        used.add(row.id)
        text, line = texts[row.id]
        extra = {"speaker": speakers[row.id]} if row.id in speakers else {}
        result.candidates.append(
            Candidate(utt_id, source_id, _resolve(location, base), text, "kaldi",
                      text_origin=f"{text_file}:{line}", extra=extra)
        )  # fmt: skip
    for raw_id, (_, line) in texts.items():
        if raw_id not in used:
            detail = f"{raw_id} has a transcript but no wav.scp entry"
            result.flag(canonical_id(raw_id)[0], f"{text_file}:{line}", MISSING_AUDIO, detail)
    return result
