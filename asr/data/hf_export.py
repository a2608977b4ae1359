"""A prepared corpus as a Hugging Face ``DatasetDict`` (``asr prepare --to-hf DIR``), and its push.

The folder is written with ``save_to_disk`` (read it with ``datasets.load_from_disk``), one split
each for train, validation and test (empty ones too, so the splits survive a round trip through
``asr prepare --hf-dataset``), columns ``audio`` (``Audio(sampling_rate=16000)``, the prepared
16 kHz mono file embedded as bytes), ``text``, ``text_norm``, ``id`` and ``duration``. It replaces
an earlier ``--to-hf`` folder only once complete. The push goes to a private dataset repository;
CS-Mage clips (non-commercial licence) need ``accept_license=True``.

>>> from asr.data.manifest import read_manifest
>>> rows = read_manifest("prepared/manifests/all.jsonl")  # doctest: +SKIP
>>> write_hf_dataset({"train": rows, "validation": [], "test": []}, "cs-mage-hf")  # doctest: +SKIP
PosixPath('cs-mage-hf')
>>> push_hf_dataset("cs-mage-hf", "me/cs-mage", csmage=True, accept_license=True)  # doctest: +SKIP
'https://huggingface.co/datasets/me/cs-mage'
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from asr.data.audio import TARGET_SAMPLE_RATE
from asr.data.manifest import Utterance
from asr.data.splits import SPLITS
from asr.errors import ASRError, ConfigError, DataError
from asr.hub import HubError, endpoint, resolve_token, validate_repo_id

log = logging.getLogger(__name__)

COLUMNS = ("audio", "text", "text_norm", "id", "duration")
LICENSE_FLAG = "--accept-cs-mage-license"
CSMAGE_TERMS = (
    "CS-Mage is distributed by its authors for non-commercial research and education only "
    "(https://github.com/Yaoooyu/CS-Mage)"
)
_CSMAGE_ID = re.compile(r"video_\d+_\d+")


def _datasets() -> Any:
    try:
        import datasets
    except ImportError:
        raise ASRError("--to-hf needs the hf extra: pip install 'cs-mage-asr[hf]'") from None
    return datasets


def check_hf_folder(folder: str | os.PathLike) -> Path:
    """``folder`` usable for :func:`write_hf_dataset`: absent, empty, or an earlier ``--to-hf`` output."""
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"--to-hf {folder}: exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / "dataset_dict.json").is_file():
        raise ConfigError(f"--to-hf {folder}: a folder with other files in it; choose a new or empty folder")
    return folder


def write_hf_dataset(splits: Mapping[str, Sequence[Utterance]], folder: str | os.PathLike) -> Path:
    """Write ``splits`` (train / validation / test rows) as a ``DatasetDict`` under ``folder``."""
    datasets = _datasets()
    folder = check_hf_folder(folder)
    features = datasets.Features(
        {
            "audio": {"bytes": datasets.Value("binary"), "path": datasets.Value("string")},
            "text": datasets.Value("string"),
            "text_norm": datasets.Value("string"),
            "id": datasets.Value("string"),
            "duration": datasets.Value("float64"),
        }
    )
    parts = {}
    empty = [name for name in SPLITS if not splits.get(name)]
    if len(empty) == len(SPLITS):
        raise ConfigError(f"--to-hf {folder}: every split is empty; nothing to write")
    for name in SPLITS:
        if name in empty:  # datasets.load_from_disk cannot read back an empty split (IndexError)
            log.warning("--to-hf %s: the %s split is empty and left out of the DatasetDict", folder, name)
            continue
        columns = _columns(splits.get(name, ()))
        # Stored as a plain struct, then cast: datasets 5 needs torchcodec to encode into Audio.
        part = datasets.Dataset.from_dict(columns, features=features, split=datasets.Split(name))
        parts[name] = part.cast_column("audio", datasets.Audio(sampling_rate=TARGET_SAMPLE_RATE))
    partial = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        datasets.DatasetDict(parts).save_to_disk(str(partial))
        _replace(partial, folder)
    except OSError as err:
        raise ASRError(f"--to-hf {folder}: cannot write there ({err.strerror or err})") from None
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    log.info("wrote %s: %s", folder, ", ".join(f"{n} {len(p)}" for n, p in parts.items()))
    return folder


def _columns(rows: Iterable[Utterance]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {name: [] for name in COLUMNS}
    for utt in rows:
        audio = Path(utt.audio)
        try:
            data = audio.read_bytes()
        except OSError as err:
            raise DataError(f"{utt.id}: cannot read its audio {audio} ({err.strerror or err})") from None
        columns["audio"].append({"bytes": data, "path": f"{utt.id}{audio.suffix.lower()}"})
        columns["text"].append(utt.text)
        columns["text_norm"].append(utt.text_norm)
        columns["id"].append(utt.id)
        columns["duration"].append(utt.duration)
    return columns


def _replace(new: Path, folder: Path) -> None:
    """Put ``new`` in place of ``folder`` (an earlier output is moved aside, then removed)."""
    old = folder.parent / f".{folder.name}.old-{os.getpid()}"
    if folder.exists():
        folder.rename(old)
    new.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def looks_like_csmage(rows: Iterable[Utterance]) -> bool:
    """True when any row is a CS-Mage clip (read from the distribution, or a ``video_V_C`` id)."""
    return any(utt.extra.get("format") == "csmage" or _CSMAGE_ID.fullmatch(utt.id) for utt in rows)


def push_hf_dataset(folder: str | os.PathLike, repo_id: str, *, csmage: bool, accept_license: bool) -> str:
    """Push the ``--to-hf`` folder to the private dataset repository ``repo_id``; returns its URL.

    ``HF_ENDPOINT`` and ``HF_TOKEN`` / the saved login apply. ConfigError for CS-Mage data unless
    ``accept_license``; HubError (the token scrubbed) when the push fails.
    """
    if csmage and not accept_license:
        raise ConfigError(
            f"{repo_id}: these are CS-Mage clips. {CSMAGE_TERMS}; pass {LICENSE_FLAG} to confirm "
            "that the dataset repository stays private and is used on those terms"
        )
    validate_repo_id(repo_id)
    token = resolve_token()
    dataset = _datasets().load_from_disk(str(folder))
    try:
        dataset.push_to_hub(repo_id, private=True, token=token)
    except Exception as err:  # httpx, HfHubHTTPError, OSError...: all reported the same way
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        raise HubError(
            f"push of {folder} to {endpoint()}/datasets/{repo_id} failed ({reason.replace(token, '***')}); "
            "rerun to retry (check HF_ENDPOINT / the network / the token's write access)"
        ) from None
    return f"{endpoint()}/datasets/{repo_id}"
