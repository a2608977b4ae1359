"""The interface every model family implements.

Everything outside ``asr/models/<family>.py`` (data, batching, scoring, training
loop glue, export) talks to models only through :class:`ASRModel`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from asr.models.spec import DecodeOptions, ModelSpec

SAMPLE_RATE = 16_000
MARKER_FILE = "cs_mage_asr.json"  # written by save(): family + registry name, read back by sources


def unwrap_peft(module: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a peft wrapper (the module itself when it has none)."""
    return module.get_base_model() if hasattr(module, "get_base_model") else module


class ASRModel(ABC):
    """A loaded speech model: transcribe waveforms, build training batches, save.

    Example::

        model = load_model("whisper-base", device="cpu")
        model.transcribe([wave], DecodeOptions(language="zh"), durations=[2.1])
    """

    family: ClassVar[str]
    spec: ModelSpec
    device: torch.device
    dtype: torch.dtype

    # --- loading / saving -------------------------------------------------
    @classmethod
    @abstractmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> ASRModel:
        """Load from a local directory (already resolved by :mod:`asr.models.sources`)."""

    @abstractmethod
    def save(self, out_dir: Path) -> None:
        """Write a self-contained checkpoint directory (safetensors, no pickles)."""

    # --- inference ------------------------------------------------------
    @abstractmethod
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        """Transcribe 16 kHz mono float32 waveforms; returns raw text (tags may remain)."""

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        """What was actually used to decode, for metrics.json."""
        return options.as_dict()

    def set_backend(self, backend: str, **options: Any) -> None:
        """Choose the decoding engine; families other than Whisper have only ``torch``."""
        if backend != "torch":
            from asr.errors import ConfigError

            raise ConfigError(f"the {self.family} family has no {backend!r} backend (only torch)")

    def clean_prediction(self, text: str) -> str:
        """Family-specific cleanup before scoring (e.g. strip SenseVoice tags)."""
        return text.strip()

    # --- training -------------------------------------------------------
    @property
    @abstractmethod
    def module(self) -> torch.nn.Module:
        """The torch module trained by the fine-tuning engine."""

    @abstractmethod
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        """Configure which parameters train: ``lora``, ``full`` or ``decoder``."""

    @abstractmethod
    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        """Turn waveforms and transcripts into a padded training batch."""

    @abstractmethod
    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward pass returning the scalar training loss."""

    def enable_spec_augment(
        self, mask_time_prob: float = 0.05, mask_feature_prob: float = 0.0, **kw: Any
    ) -> bool:
        """Turn on the module's SpecAugment (transformers ``apply_spec_augment`` configs); False if it has none.

        Extra keywords (e.g. ``mask_time_length``) are set when the config has them.
        """
        module = self.module
        base = unwrap_peft(module)
        config = getattr(base, "config", None)
        if config is None or not hasattr(config, "apply_spec_augment"):
            return False
        config.apply_spec_augment = True
        settings = {"mask_time_prob": mask_time_prob, "mask_feature_prob": mask_feature_prob, **kw}
        for key, value in settings.items():
            if hasattr(config, key):
                setattr(config, key, value)
        return True

    def unknown_characters(self, texts: list[str]) -> dict[str, int]:
        """Characters the model cannot emit (CTC vocabularies); empty for open vocabularies."""
        return {}

    def to(self, device: torch.device | str) -> ASRModel:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self
