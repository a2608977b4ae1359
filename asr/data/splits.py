"""Train/validation/test assignment: the CS-Mage v2 and v1 protocols and a seeded random split.

- ``v2`` (default): the official ``{train,validation,test}.csv`` (``sample_id,split``) when
  given, else the published rule recomputed from WAV durations (:func:`v2_split`).
- ``v1``: the published ``{train,val,test}_text.txt`` lists; they cannot be recomputed.
- ``random``: shuffle of the sorted ids with ``random.Random(seed)`` and ``--ratios``.

>>> v2_split({"video_1_1": 2.5, "video_1_2": 1.25})  # strata of one clip: round(0.7) = 1 -> train
{'video_1_2': 'train', 'video_1_1': 'train'}
>>> from collections import Counter
>>> Counter(random_split([f"u{i}" for i in range(1085)], seed=42, ratios=(8, 1, 1)).values())
Counter({'train': 869, 'validation': 108, 'test': 108})
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.id_text import read_id_text_file
from asr.data.ids import canonical_id
from asr.data.manifest import Utterance
from asr.data.text_files import read_text_file
from asr.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
PROTOCOLS = ("v2", "v1", "random")
_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation",
            "dev": "validation", "test": "test"}  # fmt: skip

V2_FILES = {"train": "train.csv", "validation": "validation.csv", "test": "test.csv"}
V1_FILES = {"train": "train_text.txt", "validation": "val_text.txt", "test": "test_text.txt"}
V2_SEED = 42
V2_STRATA = 10
V2_TRAIN_FRACTION = 0.70
V2_VALIDATION_FRACTION = 0.15
OFFICIAL_SOURCE = "github.com/Yaoooyu/CS-Mage (formerly CS-MSASR)"


def split_name(name: str, where: str = "") -> str:
    """Canonical split name: ``val``/``dev``/``valid`` -> ``validation``; others are an error."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        prefix = f"{where}: " if where else ""
        raise DataError(f"{prefix}unknown split {name!r}; expected one of {', '.join(SPLITS)} (or val/dev)")
    return _ALIASES[key]


def v2_split(durations: Mapping[str, float]) -> dict[str, str]:
    """The published CS-Mage v2 rule: duration-stratified 70/15/15 with seed 42.

    Sort by ``(duration, id)`` (durations rounded to 6 decimals); stratum ``i`` (0..9) takes
    every 10th utterance from index ``i``; one ``random.Random(42)`` shuffles the strata in
    order; in each stratum of size n the first ``round(0.70 n)`` are train, the next
    ``round(0.15 n)`` validation, the rest test.
    """
    ordered = sorted(durations, key=lambda utt_id: (round(float(durations[utt_id]), 6), utt_id))
    rng = random.Random(V2_SEED)
    assignment: dict[str, str] = {}
    for start in range(V2_STRATA):
        stratum = ordered[start::V2_STRATA]
        rng.shuffle(stratum)
        n_train = round(V2_TRAIN_FRACTION * len(stratum))
        n_validation = round(V2_VALIDATION_FRACTION * len(stratum))
        for index, utt_id in enumerate(stratum):
            if index < n_train:
                assignment[utt_id] = "train"
            elif index < n_train + n_validation:
                assignment[utt_id] = "validation"
            else:
                assignment[utt_id] = "test"
    return assignment


def parse_ratios(ratios: str | Sequence[float]) -> tuple[float, float, float]:
    """``"8:1:1"`` or ``(8, 1, 1)`` -> ``(8.0, 1.0, 1.0)``; three non-negative numbers, train > 0."""
    parts = ratios.split(":") if isinstance(ratios, str) else list(ratios)
    try:
        values = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        values = ()
    if len(values) != 3 or any(r < 0 for r in values) or values[0] <= 0:
        raise ConfigError(f"--ratios {ratios!r}: expected train:validation:test like 8:1:1 (train > 0)")
    return values  # type: ignore[return-value]


def random_split(ids: Iterable[str], seed: int, ratios: Sequence[float] = (8, 1, 1)) -> dict[str, str]:
    """Seeded shuffle of the sorted ids; validation and test get ``floor(n * share)``, train the rest."""
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    total = float(sum(ratios))
    n_validation = int(len(order) * ratios[1] / total)
    n_test = int(len(order) * ratios[2] / total)
    n_train = len(order) - n_validation - n_test
    return {
        utt_id: "train" if i < n_train else "validation" if i < n_train + n_validation else "test"
        for i, utt_id in enumerate(order)
    }


@dataclass
class SplitFiles:
    """Ids read from published split files: ``id -> split`` and ``id -> file name``."""

    assignment: dict[str, str]
    origin: dict[str, str]
    provenance: dict[str, Any]


def read_v2_split_files(folder: str | Path) -> SplitFiles:
    """Read ``train.csv``, ``validation.csv``, ``test.csv`` (columns ``sample_id,split``; strict UTF-8)."""
    folder = _require_files(Path(folder), V2_FILES, "v2")
    assignment: dict[str, str] = {}
    origin: dict[str, str] = {}
    for default_split, name in V2_FILES.items():
        path = folder / name
        reader = csv.DictReader(io.StringIO(read_text_file(path), newline=""))
        try:
            if not reader.fieldnames or "sample_id" not in reader.fieldnames:
                raise DataError(f"{path}: expected a header with sample_id,split; found {reader.fieldnames}")
            for row in reader:
                raw = (row.get("sample_id") or "").strip()
                if not raw:
                    continue
                where = f"{path}:{reader.line_num}"
                split = split_name(row.get("split") or default_split, where)
                _add(assignment, origin, canonical_id(raw)[0], split, name, where)
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: not a readable CSV file ({err})") from None
    return SplitFiles(assignment, origin, _provenance("v2", folder, V2_FILES))


def read_v1_split_files(folder: str | Path) -> SplitFiles:
    """Read ``train_text.txt``, ``val_text.txt``, ``test_text.txt`` (``<VV_CCCC> <text>`` lines)."""
    folder = _require_files(Path(folder), V1_FILES, "v1")
    assignment: dict[str, str] = {}
    origin: dict[str, str] = {}
    for split, name in V1_FILES.items():
        for row in read_id_text_file(folder / name):
            _add(assignment, origin, canonical_id(row.id)[0], split, name, f"{folder / name}:{row.line}")
    return SplitFiles(assignment, origin, _provenance("v1", folder, V1_FILES))


def _require_files(folder: Path, names: Mapping[str, str], protocol: str) -> Path:
    missing = [name for name in names.values() if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"--split-files {folder}: protocol {protocol} needs {', '.join(names.values())}; "
            f"missing {', '.join(missing)} (published at {OFFICIAL_SOURCE})"
        )
    return folder


def _add(assignment: dict[str, str], origin: dict[str, str], utt_id: str, split: str, name: str, where: str):
    if utt_id in assignment and assignment[utt_id] != split:
        raise DataError(f"{where}: {utt_id} is also listed as {assignment[utt_id]} in {origin[utt_id]}")
    assignment[utt_id] = split
    origin.setdefault(utt_id, name)


def _provenance(protocol: str, folder: Path, names: Mapping[str, str]) -> dict[str, Any]:
    files = {}
    for name in names.values():
        path = folder / name
        files[name] = {"path": str(path.resolve()), "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    return {
        "protocol": protocol,
        "source": "split_files",
        "split_files": str(folder.resolve()),
        "files": files,
    }


def check_split_options(protocol: str | None, split_files: str | Path | None) -> None:
    """Fail early on protocol / split-file combinations that cannot work (before reading a corpus)."""
    if protocol is None:
        protocol = "v2"
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown --protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if protocol == "random" and split_files is not None:
        raise ConfigError("--split-files is only used with --protocol v2 or v1")
    if protocol == "v1" and split_files is None:
        raise ConfigError(
            "protocol v1 needs --split-files DIR with train_text.txt, val_text.txt and test_text.txt: "
            f"the v1 lists cannot be recomputed exactly; get them from {OFFICIAL_SOURCE} (lists-v1)"
        )
    if split_files is not None:
        _require_files(Path(split_files), V2_FILES if protocol == "v2" else V1_FILES, protocol)


@dataclass
class SplitResult:
    """Split of the usable utterances, plus ids the split files and the data disagree on."""

    assignment: dict[str, str]
    provenance: dict[str, Any]
    listed_not_in_data: dict[str, str] = field(default_factory=dict)  # id -> split file name
    not_listed: list[str] = field(default_factory=list)


def assign_splits(
    utterances: Sequence[Utterance],
    protocol: str | None = None,
    split_files: str | Path | None = None,
    seed: int = 42,
    ratios: Sequence[float] = (8, 1, 1),
) -> SplitResult:
    """Choose the split of every utterance.

    ``protocol=None`` keeps the ``split`` already on the utterances when all have one (our own
    manifests) and otherwise means ``v2``. Ids missing from split files are returned in
    ``not_listed`` and left unassigned.
    """
    if protocol is None:
        existing = [u.split for u in utterances if u.split]
        if existing and split_files is None:
            if len(existing) != len(utterances):
                raise DataError(
                    f"{len(existing)} of {len(utterances)} manifest rows have a split; "
                    "give every row one, or pass --protocol to reassign all"
                )
            assignment = {u.id: split_name(str(u.split), u.id) for u in utterances}
            return SplitResult(
                assignment, {"protocol": "manifest", "source": "split field of the input manifests"}
            )
        protocol = "v2"
    check_split_options(protocol, split_files)
    if protocol == "random":
        assignment = random_split([u.id for u in utterances], seed, ratios)
        return SplitResult(assignment, {"protocol": "random", "source": "random", "seed": seed,
                                        "ratios": list(ratios)})  # fmt: skip
    if split_files is None:
        log.warning(
            "protocol v2 recomputed from WAV durations; the official CSVs (%s, splits-v2/) are "
            "authoritative: pass --split-files DIR to use them",
            OFFICIAL_SOURCE,
        )
        durations = {u.id: float(u.duration or 0.0) for u in utterances}
        provenance = {"protocol": "v2", "source": "recomputed", "seed": V2_SEED,
                      "rule": "sort by (duration, id); 10 strata by index mod 10; shuffle each; 70/15/15 rounded"}  # fmt: skip
        return SplitResult(v2_split(durations), provenance)
    files = read_v2_split_files(split_files) if protocol == "v2" else read_v1_split_files(split_files)
    data_ids = [u.id for u in utterances]
    present = set(data_ids)
    if data_ids and not present & files.assignment.keys():
        raise DataError(
            f"--split-files {split_files}: none of its {len(files.assignment)} ids match the data "
            f"(data ids look like {data_ids[0]!r}, split ids like {next(iter(files.assignment), '?')!r})"
        )
    return SplitResult(
        assignment={i: files.assignment[i] for i in data_ids if i in files.assignment},
        provenance=files.provenance,
        listed_not_in_data={i: files.origin[i] for i in files.assignment if i not in present},
        not_listed=[i for i in data_ids if i not in files.assignment],
    )
