"""The CS-Mage distribution: ``audio_wav.zip`` (or ``audio_wav/``) + ``CS-Mage_fulldata.pkl``.

Clip ids come in two spellings (:mod:`asr.data.ids`): ``video_V_C`` in the pkl, ``VV_CCCC``
as WAV file names; clip ``video_V_C`` is ``audio_wav/VV_CCCC.wav``.

>>> import pickle, tempfile
>>> import numpy as np
>>> from asr.data.audio import write_wav
>>> root = Path(tempfile.mkdtemp())
>>> _ = write_wav(root / "audio_wav" / "01_0001.wav", np.zeros(8000, dtype=np.float32))
>>> _ = (root / "CS-Mage_fulldata.pkl").write_bytes(
...     pickle.dumps({"id": ["video_1_1", "video_1_2"], "raw_text": ["好咯", "蛮好的"]}))
>>> result = read_csmage(root, audio_dir=root / "extracted")
>>> [(c.id, c.source_id, c.text) for c in result.candidates]
[('video_1_1', '01_0001', '好咯')]
>>> [(s.id, s.problem) for s in result.suspects]
[('video_1_2', 'missing_audio')]
"""

from __future__ import annotations

import logging
import lzma
import math
import os
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from asr.data.audio import audio_info, check_finite
from asr.data.ids import canonical_id, to_source_id, to_video_id
from asr.data.records import (
    MISSING_AUDIO,
    NO_TRANSCRIPT,
    TOO_LARGE,
    UNREADABLE_AUDIO,
    Candidate,
    IdText,
    ReadResult,
    keep_first,
)
from asr.data.safe_pickle import safe_load
from asr.disk import existing_parent
from asr.errors import ASRError, ConfigError, DataError
from asr.io import atomic_write

# The id helpers live in asr.data.ids; they are re-exported here, where callers look for them.
__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_MEMBER_BYTES_ENV",
    "canonical_id",
    "find_pkl",
    "member_size_limit",
    "read_csmage",
    "read_fulldata_pkl",
    "to_source_id",
    "to_video_id",
]

log = logging.getLogger(__name__)

FORMAT = "csmage"
PKL_NAMES = ("CS-Mage_fulldata.pkl", "CS-MSASR_fulldata.pkl")
ZIP_NAME = "audio_wav.zip"
AUDIO_FOLDER = "audio_wav"

# A zip member that would expand beyond this many bytes is refused (``too_large``) without
# being extracted. CS-Mage clips are under 30 s of 16 kHz 16-bit mono (< 1 MB), so 64 MiB
# is generous; the environment variable overrides it (``read_csmage(max_member_bytes=...)`` too).
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_MEMBER_BYTES_ENV = "ASR_MAX_ZIP_MEMBER_BYTES"
# A zip bomb can stay under the per-member cap with many members (12 x 60 MiB from 736 KB).
# Speech compresses about 1.2:1 (deflate tops out near 1030:1); an archive, or a member over
# 1 MiB, past this ratio is refused.
MAX_COMPRESSION_RATIO = 100
ZIP_BOMB_MIN_BYTES = 256 * 1024**2  # the archive-wide ratio counts once this much would come out
# Everything a zip may extract: its directory's total, and what reading it actually yields, must
# fit in the free space of the audio folder (less a margin) and under this many bytes.
MAX_TOTAL_BYTES = 16 * 1024**3
FREE_SPACE_MARGIN = 256 * 1024**2
_COPY_BLOCK = 1 << 20
_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
# What reading a damaged or unusual member can raise (the zip module, zlib, bz2 and lzma).
_MEMBER_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    ValueError,
    RuntimeError,
    NotImplementedError,
    zlib.error,
    lzma.LZMAError,
)


def member_size_limit() -> int:
    """The per-member extraction limit: ``$ASR_MAX_ZIP_MEMBER_BYTES`` or :data:`MAX_MEMBER_BYTES`."""
    raw = os.environ.get(MAX_MEMBER_BYTES_ENV, "").strip()
    if not raw:
        return MAX_MEMBER_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise ConfigError(f"{MAX_MEMBER_BYTES_ENV}={raw!r}: expected a positive number of bytes")
    return value


def find_pkl(*folders: Path) -> Path | None:
    """The first ``CS-Mage_fulldata.pkl`` (or the older ``CS-MSASR_fulldata.pkl``) in ``folders``."""
    for folder in folders:
        for name in PKL_NAMES:
            if (folder / name).is_file():
                return folder / name
    return None


def read_fulldata_pkl(path: str | Path) -> list[IdText]:
    """The ``(id, raw_text, position)`` of each clip of a CS-Mage pkl, in stored order (restricted unpickler)."""
    path = Path(path)
    data = safe_load(path)
    if not isinstance(data, dict) or "id" not in data or "raw_text" not in data:
        found = f"keys {sorted(map(str, data))}" if isinstance(data, dict) else type(data).__name__
        raise DataError(f"{path}: expected a dict with 'id' and 'raw_text' lists, found {found}")
    ids, texts = _as_list(data["id"], path, "id"), _as_list(data["raw_text"], path, "raw_text")
    if len(ids) != len(texts):
        raise DataError(f"{path}: 'id' has {len(ids)} entries but 'raw_text' has {len(texts)}")
    return [IdText(str(i).strip(), _as_text(t), n) for n, (i, t) in enumerate(zip(ids, texts, strict=True))]


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
        # Never replacement characters: bytes that are not UTF-8 keep their value as lone
        # surrogates, which validation reports (with the encoding they look like) and leaves out.
        return value.decode("utf-8", errors="surrogateescape")
    return str(value)


def _is_wav_member(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(".wav") and not base.startswith("._") and "__MACOSX/" not in name


def read_csmage(root: Path, audio_dir: Path, *, max_member_bytes: int | None = None) -> ReadResult:
    """Pair the pkl transcripts with their WAVs; zip members are extracted into ``audio_dir``.

    Extraction is skipped for a file already there with the member's content (same size and
    CRC-32 as the zip directory records), so a replaced zip is extracted again. A member is
    refused without extraction (a suspect, left out) when it is encrypted, uses a compression
    method that cannot be read, or would expand beyond ``max_member_bytes`` (default
    :func:`member_size_limit`); an extracted file that is not decodable audio (or holds NaN /
    infinite samples) is deleted and reported. A pkl id without a WAV is ``missing_audio``;
    a WAV without a pkl id is ``no_transcript``.
    """
    cap = member_size_limit() if max_member_bytes is None else max_member_bytes
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
            budget = _ExtractBudget(zip_path, audio_dir, members, cap)
            wavs = _by_stem(((m, f"{zip_path}:{m.filename}") for m in members), result)
            try:
                for entry, member in _match(entries, wavs, f"{zip_path}:{AUDIO_FOLDER}", pkl, result):
                    audio = _extract(archive, member, zip_path, audio_dir, result, budget)
                    if audio is not None:
                        result.candidates.append(_candidate(entry, audio, pkl))
            except ZipBudgetError:
                budget.remove_extracted()
                raise
    else:
        result.sources.append(str(folder))
        paths = sorted(p for p in folder.rglob("*") if p.is_file() and _is_wav_member(p.as_posix()))
        wavs = _by_stem(((p, str(p)) for p in paths), result)
        for entry, path in _match(entries, wavs, str(folder), pkl, result):
            result.candidates.append(_candidate(entry, path.resolve(), pkl))
    return result


def _candidate(entry: IdText, audio: Path, pkl: Path) -> Candidate:
    utt_id, source_id = canonical_id(entry.id)
    return Candidate(utt_id, source_id, audio, entry.text, FORMAT, text_origin=f"{pkl}[{entry.line}]")


def _by_stem(items: Iterable[tuple[Any, str]], result: ReadResult) -> dict[str, tuple[Any, str]]:
    """WAVs keyed by file stem; a repeated stem is reported and the first one kept."""
    named = ((label.rsplit("/", 1)[-1][: -len(".wav")], label, (item, label)) for item, label in items)
    return keep_first(named, result.suspects, lambda first: f"same file name as {first[1]}")


def _match(
    entries: list[IdText], wavs: dict[str, tuple[Any, str]], where: str, pkl: Path, result: ReadResult
) -> Iterator[tuple[IdText, Any]]:
    used: set[str] = set()
    for entry in entries:
        utt_id, source_id = canonical_id(entry.id)
        stem = source_id if source_id in wavs else entry.id
        if stem not in wavs:
            detail = f"{pkl.name} lists {entry.id} but there is no {source_id}.wav"
            result.flag(utt_id, f"{where}/{source_id}.wav", MISSING_AUDIO, detail)
            continue
        used.add(stem)
        yield entry, wavs[stem][0]
    for stem, (_, label) in wavs.items():
        if stem not in used:
            result.flag(canonical_id(stem)[0], label, NO_TRANSCRIPT, f"no entry for this WAV in {pkl.name}")


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable zip archive ({err})") from err


class _RefusedMember(Exception):
    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(detail)
        self.problem, self.detail = problem, detail


def _extract(
    archive: zipfile.ZipFile,
    member: zipfile.ZipInfo,
    zip_path: Path,
    audio_dir: Path,
    result: ReadResult,
    budget: _ExtractBudget,
) -> Path | None:
    """``audio_dir/<name>.wav`` holding the member's content, or None after flagging it."""
    name = member.filename.rsplit("/", 1)[-1]
    target = audio_dir / name
    try:
        _check_member(member, budget.cap)
        if not _holds_member(target, member):
            _copy_member(archive, member, target, budget)
        audio_info(target)
        check_finite(target)
    except _RefusedMember as err:
        problem, detail = err.problem, err.detail
    except ZipBudgetError:
        raise
    except DataError as err:  # not decodable audio, or NaN / infinite samples
        problem, detail = getattr(err, "problem", UNREADABLE_AUDIO), getattr(err, "reason", str(err))
    else:
        return target.resolve()
    if target.is_file() or target.is_symlink():  # never leave unusable (or earlier) audio behind
        target.unlink()
        detail += "; its extracted copy was removed"
    result.flag(canonical_id(name[: -len(".wav")])[0], f"{zip_path}:{member.filename}", problem, detail)
    return None


def _check_member(member: zipfile.ZipInfo, cap: int) -> None:
    """Refuse, before reading it, a member that is encrypted, unreadable or too big."""
    if member.flag_bits & 0x1:
        raise _RefusedMember(
            UNREADABLE_AUDIO,
            "zip member is encrypted (password protected); re-pack the zip without a password",
        )
    if member.compress_type not in _READABLE_METHODS:
        method = zipfile.compressor_names.get(member.compress_type, "unknown")
        raise _RefusedMember(
            UNREADABLE_AUDIO,
            f"zip member uses compression method {member.compress_type} ({method}), which cannot be read; "
            "re-pack the zip with deflate (or store)",
        )
    if member.file_size > cap:
        raise _RefusedMember(TOO_LARGE, _too_large(f"{member.file_size} bytes", cap))
    ratio = member.file_size / max(member.compress_size, 1)
    if member.file_size > 1024**2 and ratio > MAX_COMPRESSION_RATIO:
        raise _RefusedMember(
            TOO_LARGE,
            f"zip member expands {ratio:.0f}:1 ({member.file_size} bytes from {member.compress_size}), over "
            f"{MAX_COMPRESSION_RATIO}:1; not extracted (speech compresses about 1.2:1: a zip bomb?)",
        )


def _too_large(size: str, cap: int) -> str:
    return (
        f"zip member expands to {size}, over the limit of {cap} bytes per member; not extracted "
        f"(a CS-Mage clip is under 1 MB; set {MAX_MEMBER_BYTES_ENV} to raise the limit)"
    )


def _holds_member(target: Path, member: zipfile.ZipInfo) -> bool:
    """Whether ``target`` already has the member's content: its size and CRC-32 (not its age)."""
    try:
        if not target.is_file() or target.stat().st_size != member.file_size:
            return False
        crc = 0
        with target.open("rb") as handle:
            for block in iter(lambda: handle.read(_COPY_BLOCK), b""):
                crc = zlib.crc32(block, crc)
    except OSError:
        return False
    return crc == member.CRC


def _copy_member(
    archive: zipfile.ZipFile, member: zipfile.ZipInfo, target: Path, budget: _ExtractBudget
) -> None:
    """Extract ``member`` to ``target`` atomically, reading at most ``budget.cap`` bytes of it.

    Problems reading the member are :class:`_RefusedMember`; problems writing ``target``
    concern the whole run and are an ASRError.
    """
    try:
        src = archive.open(member)
    except _MEMBER_ERRORS as err:
        raise _RefusedMember(UNREADABLE_AUDIO, f"zip member cannot be opened ({_describe(err)})") from None
    try:
        with src, atomic_write(target, "wb") as dst:
            written = 0
            while True:
                try:
                    block = src.read(_COPY_BLOCK)
                except _MEMBER_ERRORS as err:
                    raise _RefusedMember(
                        UNREADABLE_AUDIO, f"zip member is damaged ({_describe(err)})"
                    ) from None
                if not block:
                    break
                written += len(block)
                if written > budget.cap:  # the zip directory understated the size
                    raise _RefusedMember(
                        TOO_LARGE,
                        _too_large(f"more than the {member.file_size} bytes its zip entry says", budget.cap),
                    )
                budget.spend(len(block))
                dst.write(block)
    except OSError as err:
        raise ASRError(f"{target}: cannot write the extracted audio ({err.strerror or err})") from None
    budget.extracted.append(target)


class ZipBudgetError(DataError):
    """A zip would extract more than the folder can or should hold (a zip bomb, a full disk)."""


class _ExtractBudget:
    """How much one zip may extract in all; checked on its directory first, then on what it yields.

    Tripping it is a :class:`DataError` naming the zip; the caller then removes every file this
    run extracted (files already there from an earlier run, with the same content, stay).
    """

    def __init__(self, zip_path: Path, audio_dir: Path, members: list[zipfile.ZipInfo], cap: int) -> None:
        self.zip_path, self.cap, self.extracted, self.spent = zip_path, cap, [], 0
        free = shutil.disk_usage(existing_parent(audio_dir)).free
        self.limit = max(0, min(MAX_TOTAL_BYTES, free - FREE_SPACE_MARGIN))
        expands = sum(min(m.file_size, cap) for m in members)
        packed = sum(m.compress_size for m in members)
        if expands > ZIP_BOMB_MIN_BYTES and expands / packed > MAX_COMPRESSION_RATIO:
            raise ZipBudgetError(
                f"{zip_path}: its audio would expand {expands / packed:.0f}:1 ({expands} bytes from {packed}), "
                f"over {MAX_COMPRESSION_RATIO}:1; nothing extracted (speech compresses about 1.2:1: a zip bomb?)"
            )
        if expands > self.limit:
            raise ZipBudgetError(
                f"{zip_path}: its audio expands to {expands} bytes, more than the {self.limit} bytes "
                f"that may be extracted into {audio_dir} (free space less {FREE_SPACE_MARGIN >> 20} MiB, at "
                f"most {MAX_TOTAL_BYTES >> 30} GiB); nothing extracted"
            )

    def spend(self, size: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise ZipBudgetError(
                f"{self.zip_path}: extracting yields more than the {self.limit} bytes allowed (its zip "
                "directory understates the sizes); everything extracted by this run was removed"
            )

    def remove_extracted(self) -> None:
        for path in self.extracted:
            path.unlink(missing_ok=True)


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:200]
