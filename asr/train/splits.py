"""The three manifests a fine-tuning run reads, checked before any compute."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr.data.audio import audio_info, load_audio
from asr.data.manifest import Utterance, read_manifest
from asr.errors import DataError
from asr.train.finetune_config import FinetuneConfig

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")


@dataclass
class Splits:
    """Checked manifests; ``dropped`` are training clips longer than ``max_duration``."""

    train: list[Utterance]
    validation: list[Utterance]
    test: list[Utterance]
    dropped: list[Utterance]

    @property
    def train_hours(self) -> float:
        """Training audio in hours (rounded to 4 decimals)."""
        return round(sum(u.duration or 0.0 for u in self.train) / 3600, 4)


def _read_split(cfg: FinetuneConfig, split: str) -> list[Utterance]:
    path = cfg.manifest(split)
    if not path.is_file():
        raise DataError(
            f"{path}: {split} manifest not found (prepare the data with `asr prepare --out {cfg.data}` "
            f"or set {split}_manifest=PATH)"
        )
    utts = read_manifest(path)
    if not utts:
        raise DataError(f"{path}: the {split} split is empty")
    missing = [u.audio for u in utts if not Path(u.audio).is_file()]
    if missing:
        raise DataError(f"{path}: {len(missing)} audio files not found, e.g. {', '.join(missing[:3])}")
    _check_decodable(path, utts)
    return utts


def _decode_problem(utt: Utterance) -> str | None:
    try:
        load_audio(utt.audio)
    except DataError as err:
        return f"{utt.id} ({err})"
    return None


def _check_decodable(path: Path, utts: list[Utterance]) -> None:
    """Decode every clip once before the first step: a bad one would stop training mid-run
    inside a DataLoader worker."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        problems = [p for p in pool.map(_decode_problem, utts) if p]
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(
            f"{path}: {len(problems)} of {len(utts)} clips cannot be decoded: {shown}. Remove them from "
            "the manifest (or rerun `asr prepare`, which leaves them out as suspects)"
        )


def _drop_long(cfg: FinetuneConfig, train: list[Utterance]) -> tuple[list[Utterance], list[Utterance]]:
    """(kept, dropped): training clips within / beyond ``max_duration``."""
    for utt in train:
        if utt.duration is None:
            utt.duration = audio_info(utt.audio).duration
    if cfg.max_duration is None:
        return train, []
    dropped = [u for u in train if (u.duration or 0.0) > cfg.max_duration]
    kept = [u for u in train if (u.duration or 0.0) <= cfg.max_duration]
    if dropped:
        log.warning(
            "dropped %d training clips longer than max_duration=%.1fs (e.g. %s)",
            len(dropped),
            cfg.max_duration,
            ", ".join(u.id for u in dropped[:5]),
        )
    if not kept:
        raise DataError(
            f"{cfg.manifest('train')}: all {len(dropped)} training clips are longer than "
            f"max_duration={cfg.max_duration}s"
        )
    return kept, dropped


def load_splits(cfg: FinetuneConfig) -> Splits:
    """Read and check the three manifests (files, audio, non-empty splits, durations)."""
    found = {split: _read_split(cfg, split) for split in SPLITS}
    train, dropped = _drop_long(cfg, found["train"])
    validation = found["validation"][: cfg.eval_limit] if cfg.eval_limit else found["validation"]
    return Splits(train, validation, found["test"], dropped)
