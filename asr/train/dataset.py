"""Training data for the Trainer: utterances, a length-grouped seeded sampler and the batch collator.

The sampler yields ``(index, epoch)`` pairs so that each item knows its epoch (for the
per-epoch speed-perturbation draw) in any worker process and after a resumed run.

Example::

    data = SpeechDataset(utts)
    sampler = EpochLengthGroupedSampler(data.lengths, batch_size=16, seed=42)
    loader = DataLoader(data, batch_size=16, sampler=sampler, collate_fn=SpeechCollator(model, [0.9, 1.0, 1.1], 42))
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from transformers.trainer_pt_utils import LengthGroupedSampler

from asr.data.audio import load_audio
from asr.data.manifest import Utterance
from asr.models.base import ASRModel
from asr.train.augment import draw_factor, speed_perturb


class SpeechDataset(torch.utils.data.Dataset):
    """Utterances whose items are decoded audio plus transcript (audio is read in the worker)."""

    def __init__(self, utts: Sequence[Utterance], text_field: str = "text_norm"):
        self.utts = list(utts)
        self.text_field = text_field

    def __len__(self) -> int:
        return len(self.utts)

    @property
    def lengths(self) -> list[float]:
        """Durations in seconds (the sampler groups by these)."""
        return [float(u.duration or 0.0) for u in self.utts]

    def texts(self) -> list[str]:
        return [getattr(u, self.text_field) for u in self.utts]

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        index, epoch = item if isinstance(item, tuple) else (item, 0)
        utt = self.utts[index]
        return {
            "index": index,
            "epoch": epoch,
            "id": utt.id,
            "wave": load_audio(utt.audio),
            "text": getattr(utt, self.text_field),
        }


class EpochLengthGroupedSampler(LengthGroupedSampler):
    """transformers' :class:`LengthGroupedSampler`, reseeded with ``seed + epoch`` every epoch.

    The Trainer (through accelerate) calls :meth:`set_epoch`, so a resumed run sees the
    same order as an uninterrupted one. Yields ``(index, epoch)``.
    """

    def __init__(self, lengths: Sequence[float], batch_size: int, seed: int):
        super().__init__(batch_size, lengths=list(lengths), generator=torch.Generator())
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        self.generator.manual_seed(self.seed + self.epoch)
        epoch = self.epoch
        for index in super().__iter__():
            yield (int(index), epoch)


class SpeechCollator:
    """Speed-perturb, then ``asr_model.collate(waves, texts)``, plus ``keys`` (one id per input).

    A key names the exact input an utterance became (``id`` or ``id@speed0.9``), so a
    family may cache per-utterance work (e.g. a frozen encoder's output) by key.
    """

    def __init__(self, asr_model: ASRModel, speed_factors: Sequence[float] = (), seed: int = 0):
        self.asr_model = asr_model
        self.speed_factors = [float(f) for f in speed_factors]
        self.seed = seed

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        waves: list[np.ndarray] = []
        keys: list[str] = []
        for item in items:
            factor = draw_factor(self.speed_factors, self.seed, item["epoch"], item["index"])
            waves.append(speed_perturb(item["wave"], factor))
            keys.append(item["id"] if factor == 1.0 else f"{item['id']}@speed{factor:g}")
        batch: dict[str, Any] = dict(self.asr_model.collate(waves, [item["text"] for item in items]))
        batch["keys"] = keys
        return batch
