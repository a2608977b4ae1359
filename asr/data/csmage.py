"""The CS-Mage distribution: ``audio_wav.zip`` (or ``audio_wav/``) + ``CS-Mage_fulldata.pkl``.

Clip ids come in two spellings: ``video_V_C`` (the pkl and the v2 split CSVs) and
``VV_CCCC`` (WAV file names and the v1 lists). Manifests use ``video_V_C`` as ``id``
and keep ``VV_CCCC`` as ``source_id``.

>>> to_source_id("video_1_1"), to_video_id("01_0001")
('01_0001', 'video_1_1')
>>> result = read_csmage(Path("CS-Mage"), audio_dir=Path("prepared/audio"))
"""

from __future__ import annotations

import logging
import math
import os
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from asr.data.records import (
    DUPLICATE_ID,
    MISSING_AUDIO,
    NO_TRANSCRIPT,
    UNREADABLE_AUDIO,
    Candidate,
    ReadResult,
    Suspect,
)
from asr.data.safe_pickle import safe_load
from asr.errors import DataError

log = logging.getLogger(__name__)

FORMAT = "csmage"
PKL_NAMES = ("CS-Mage_fulldata.pkl", "CS-MSASR_fulldata.pkl")
ZIP_NAME = "audio_wav.zip"
AUDIO_FOLDER = "audio_wav"

_VIDEO_ID = re.compile(r"video_(\d+)_(\d+)")
_SOURCE_ID = re.compile(r"(\d{2,})_(\d{4,})")


def to_source_id(video_id: str) -> str:
    """``video_1_1`` -> ``01_0001`` (ValueError for other shapes)."""
    match = _VIDEO_ID.fullmatch(video_id)
    if not match:
        raise ValueError(f"not a video_V_C id: {video_id!r}")
    return f"{int(match[1]):02d}_{int(match[2]):04d}"


def to_video_id(source_id: str) -> str:
    """``01_0001`` -> ``video_1_1`` (ValueError for other shapes)."""
    match = _SOURCE_ID.fullmatch(source_id)
    if not match:
        raise ValueError(f"not a VV_CCCC id: {source_id!r}")
    return f"video_{int(match[1])}_{int(match[2])}"


def canonical_id(raw: str) -> tuple[str, str]:
    """``(id, source_id)`` for any clip id: CS-Mage ids in either spelling, others unchanged."""
    if _VIDEO_ID.fullmatch(raw):
        return raw, to_source_id(raw)
    if _SOURCE_ID.fullmatch(raw):
        return to_video_id(raw), raw
    return raw, raw


def find_pkl(*folders: Path) -> Path | None:
    """The first ``CS-Mage_fulldata.pkl`` (or the older ``CS-MSASR_fulldata.pkl``) in ``folders``."""
    for folder in folders:
        for name in PKL_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


class PklEntry(NamedTuple):
    id: str
    text: str
    index: int


def read_fulldata_pkl(path: str | Path) -> list[PklEntry]:
    """The ``(id, raw_text)`` pairs of a CS-Mage pkl, in stored order (restricted unpickler)."""
    path = Path(path)
    data = safe_load(path)
    if not isinstance(data, dict) or "id" not in data or "raw_text" not in data:
        found = f"keys {sorted(map(str, data))}" if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected a dict with 'id' and 'raw_text' lists, found {found}")
    ids, texts = _as_list(data["id"], path, "id"), _as_list(data["raw_text"], path, "raw_text")
    if len(ids) != len(texts):
        raise DataError(f"{path}: 'id' has {len(ids)} entries but 'raw_text' has {len(texts)}")
    return [PklEntry(str(i).strip(), _as_text(t), n) for n, (i, t) in enumerate(zip(ids, texts, strict=True))]


def _as_list(value: Any, path: Path, key: str) -> list[Any]:
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        raise DataError(f"{path}: {key!r} should be a list or array, found {type(value).__name__}")
    return list(value)


def _as_text(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _is_wav_member(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(".wav") and not base.startswith("._") and "__MACOSX/" not in name


def read_csmage(root: Path, audio_dir: Path) -> ReadResult:
    """Pair the pkl transcripts with their WAVs; zip members are extracted into ``audio_dir``.

    Extraction is skipped for files already there with the member's size. A pkl id without
    a WAV is ``missing_audio``; a WAV without a pkl id is ``no_transcript``.
    """
    pkl = find_pkl(root)
    if pkl is None:
        raise DataError(f"{root}: CS-Mage layout needs {PKL_NAMES[0]} (or {PKL_NAMES[1]})")
    zip_path, folder = root / ZIP_NAME, root / AUDIO_FOLDER
    if not zip_path.is_file() and not folder.is_dir():
        raise DataError(f"{root}: CS-Mage layout needs {ZIP_NAME} or an unpacked {AUDIO_FOLDER}/ folder")
    result = ReadResult(FORMAT, sources=[str(pkl)])
    entries = read_fulldata_pkl(pkl)
    log.info("%s: %d transcripts", pkl, len(entries))
    if zip_path.is_file():
        result.sources.append(str(zip_path))
        with _open_zip(zip_path) as archive:
            members = [m for m in archive.infolist() if not m.is_dir() and _is_wav_member(m.filename)]
            wavs = _by_stem(((m, f"{zip_path}:{m.filename}") for m in members), result)
            for entry, member in _match(entries, wavs, f"{zip_path}:{AUDIO_FOLDER}", pkl, result):
                audio = _extract(archive, member, zip_path, audio_dir, result)
                if audio is not None:
                    result.candidates.append(_candidate(entry, audio, pkl))
    else:
        result.sources.append(str(folder))
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and _is_wav_member(p.as_posix()))
        wavs = _by_stem(((p, str(p)) for p in paths), result)
        for entry, path in _match(entries, wavs, str(folder), pkl, result):
            result.candidates.append(_candidate(entry, path.resolve(), pkl))
    return result


def _candidate(entry: PklEntry, audio: Path, pkl: Path) -> Candidate:
    utt_id, source_id = canonical_id(entry.id)
    return Candidate(utt_id, source_id, audio, entry.text, FORMAT, text_origin=f"{pkl}[{entry.index}]")


def _by_stem(items: Iterable[tuple[Any, str]], result: ReadResult) -> dict[str, tuple[Any, str]]:
    """WAVs keyed by file stem; a repeated stem is reported and the first one kept."""
    index: dict[str, tuple[Any, str]] = {}
    for item, label in items:
        stem = label.rsplit("/", 1)[-1][: -len(".wav")]
        if stem in index:
            result.suspects.append(
                Suspect(canonical_id(stem)[0], label, DUPLICATE_ID, f"same file name as {index[stem][1]}")
            )
        else:
            index[stem] = (item, label)
    return index


def _match(
    entries: list[PklEntry], wavs: dict[str, tuple[Any, str]], where: str, pkl: Path, result: ReadResult
) -> Iterator[tuple[PklEntry, Any]]:
    used: set[str] = set()
    for entry in entries:
        utt_id, source_id = canonical_id(entry.id)
        stem = source_id if source_id in wavs else entry.id
        if stem not in wavs:
            detail = f"{pkl.name} lists {entry.id} but there is no {source_id}.wav"
            result.suspects.append(Suspect(utt_id, f"{where}/{source_id}.wav", MISSING_AUDIO, detail))
            continue
        used.add(stem)
        yield entry, wavs[stem][0]
    for stem, (_, label) in wavs.items():
        if stem not in used:
            detail = f"no entry for this WAV in {pkl.name}"
            result.suspects.append(Suspect(canonical_id(stem)[0], label, NO_TRANSCRIPT, detail))


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as err:
        raise DataError(f"{path}: not a readable zip archive ({err})") from err


def _extract(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, zip_path: Path, audio_dir: Path, result: ReadResult
) -> Path | None:
    name = member.filename.rsplit("/", 1)[-1]
    target = audio_dir / name
    if target.is_file() and target.stat().st_size == member.file_size:
        return target.resolve()
    audio_dir.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with archive.open(member) as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, target)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        utt_id = canonical_id(name[: -len(".wav")])[0]
        result.suspects.append(
            Suspect(utt_id, f"{zip_path}:{member.filename}", UNREADABLE_AUDIO, f"zip member: {err}")
        )
        return None
    finally:
        tmp.unlink(missing_ok=True)
    return target.resolve()
