"""The interface every model family implements.

Everything outside ``asr/models/<family>/`` (data, batching, scoring, training
loop glue, export, the model card) talks to models only through :class:`ASRModel`.
Facts needed before any weights load (card metadata, CTranslate2 support, checkpoint
checks) are class-level, reachable through ``asr.models.registry.family_class``.
"""

from __future__ import annotations

import argparse
import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from asr.errors import ASRError, ConfigError, ModelSourceError
from asr.models.checkpoint import unwrap_peft
from asr.models.peft_utils import is_peft, merge_lora
from asr.models.spec import DecodeOptions, ModelSpec
from asr.typed_config import from_dict


@dataclasses.dataclass
class NoOptions:
    """The training options of a family that has none of its own."""


class ASRModel(ABC):
    """A loaded speech model: transcribe waveforms, build training batches, save.

    Example::

        model = load_model("my-model", device="cpu")
        model.transcribe([wave], model.decode_options(DecodeOptions(language="zh")), durations=[2.1])
    """

    family: ClassVar[str]
    spec: ModelSpec
    device: torch.device  # where the model was asked to run (``cuda:1`` keeps its index)
    dtype: torch.dtype  # the dtype asked for at load; see :attr:`param_dtype` for what the weights are now
    # The dtype :meth:`save` writes: the checkpoint's own at load (fp32 for ours), whatever the
    # module has been cast to since (DeepSpeed bf16/fp16, a half-precision decode).
    save_dtype: torch.dtype = torch.float32

    # --- class-level facts (no weights needed) ----------------------------
    default_lora_targets: ClassVar[tuple[str, ...]] = ()  # when the spec names none
    card_tag: ClassVar[str]  # the family's Hub tag in a model card
    peft_base_class: ClassVar[str | None] = None  # transformers class an exported adapter loads onto
    supports_ct2: ClassVar[bool] = False  # ``asr export --ct2``
    # Longest audio one ``transcribe`` input should hold (``asr transcribe`` cuts pieces to it):
    # a fixed-context encoder's window; families that take longer input were mostly trained on
    # short clips, so they get the same by default.
    max_input_seconds: ClassVar[float] = 30.0
    # The longest clip one ``transcribe`` input may be (a fixed encoder window); longer clips are
    # cut into windows by the decoding code (asr.inference). None: any length is encoded whole.
    max_audio_seconds: ClassVar[float | None] = None

    def __init__(self, spec: ModelSpec, device: torch.device | str, dtype: torch.dtype) -> None:
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype  # asked for at load; the weights' own dtype is param_dtype

    # --- loading / saving -------------------------------------------------
    @classmethod
    @abstractmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> ASRModel:
        """Load from a local directory (already resolved by :mod:`asr.models.sources`)."""

    @abstractmethod
    def save(self, out_dir: Path) -> None:
        """Write a self-contained checkpoint directory (safetensors, no pickles)."""

    # --- export ---------------------------------------------------------
    @classmethod
    def check_full_weights(cls, path: Path) -> None:
        """Raise :class:`ModelSourceError` unless ``path`` holds full safetensors weights (transformers)."""
        names = {p.name for p in path.iterdir()}
        if "model.safetensors" in names or "model.safetensors.index.json" in names:
            return
        pickled = sorted(names & {"pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5"})
        if pickled:
            raise ModelSourceError(
                f"{path}: weights only as {pickled[0]}; exports are safetensors only "
                "(load and save it once with `asr finetune`/`ASRModel.save`, which writes model.safetensors)"
            )
        raise ModelSourceError(f"{path}: config.json but no model.safetensors; the checkpoint is incomplete")

    def merge_lora(self) -> bool:
        """Merge a LoRA adapter into the weights in place (False when there is none).

        The attribute holding :attr:`module` is pointed at the merged module, so :meth:`save`
        then writes full weights.
        """
        wrapped = self.module
        if not is_peft(wrapped):
            return False
        merged = merge_lora(wrapped)
        for name, value in list(vars(self).items()):
            if value is wrapped:
                setattr(self, name, merged)
        if self.module is not merged:
            raise ASRError(
                f"cannot merge LoRA for the {self.family} family: its module is not held in a plain attribute"
            )
        return True

    def save_export(self, out_dir: Path) -> None:
        """:meth:`save` plus the files an export adds for other tools (merged weights only)."""
        self.save(out_dir)

    @classmethod
    def finish_adapter_export(cls, checkpoint: Path, spec: ModelSpec, out_dir: Path) -> None:
        """Adjust the files of an adapter export copied from ``checkpoint`` into ``out_dir`` (default: none)."""
        return None

    @classmethod
    def convert_ct2(cls, model_dir: Path, out_dir: Path, quantization: str) -> Path:
        """Convert an exported folder to CTranslate2 (only where :attr:`supports_ct2`)."""
        raise ModelSourceError(f"the {cls.family} family has no CTranslate2 conversion")

    # --- model card (the text is asr.export.cards') -----------------------
    @classmethod
    def card_library(cls, adapter: bool) -> str:
        """The Hub ``library_name`` of an export (``adapter``: a peft adapter)."""
        return "peft" if adapter else "transformers"

    # --- the family's own options --------------------------------------
    # Decoding: a DecodeOptions subclass with the family's fields (metrics.json records them all).
    # Training: a dataclass read from the fine-tuning config's ``model_options`` section.
    decode_options_class: ClassVar[type[DecodeOptions]] = DecodeOptions
    train_options_class: ClassVar[type] = NoOptions

    @classmethod
    def add_decode_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the family's own decoding flags (one argument group) to ``asr evaluate``; default none."""
        return None

    def decode_options(self, shared: DecodeOptions, args: argparse.Namespace | None = None) -> DecodeOptions:
        """The family's decode options: the ``shared`` settings plus its own, read from ``args``
        (flags of :meth:`add_decode_arguments`) or left at their defaults."""
        return shared

    @classmethod
    def train_options(cls, data: Mapping[str, Any]) -> Any:
        """The family's training options from ``model_options`` (ConfigError naming a bad key)."""
        if data and not dataclasses.fields(cls.train_options_class):
            raise ConfigError(
                f"model_options: the {cls.family} family has no options of its own, got {', '.join(data)}"
            )
        return from_dict(cls.train_options_class, data, where="model_options")

    def configure_training(self, options: Any) -> None:
        """Apply :meth:`train_options` before the trainable parameters are chosen; default none."""
        return None

    def training_setup_warnings(self) -> list[str]:
        """Problems of the finished training setup worth a warning (logged by the fine-tuning engine)."""
        return []

    # --- inference ------------------------------------------------------
    @abstractmethod
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        """Transcribe 16 kHz mono float32 waveforms; returns raw text (tags may remain)."""

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        """What was actually used to decode, for metrics.json."""
        return options.as_dict()

    def decode_stats(self) -> dict[str, Any]:
        """Counts from decoding since :meth:`reset_decode_stats` (e.g. Whisper's packing fallbacks), for metrics.json."""
        return {}

    def reset_decode_stats(self) -> None:
        """Start :meth:`decode_stats` over (a new run's decode)."""

    def set_backend(self, backend: str, **options: Any) -> None:
        """Choose the decoding engine: ``auto`` (see :meth:`auto_backend`), ``torch``, or one of
        the family's own (``options`` are that engine's, e.g. ``compute_type``)."""
        if backend == "auto":
            backend, chosen = self.auto_backend()
            options = {**chosen, **{k: v for k, v in options.items() if v is not None}}
        self._use_backend(backend, **options)

    def auto_backend(self, recorded: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """The engine ``--backend auto`` picks and its options: the fastest where measured no worse.

        ``recorded``: the decoding settings of a run being resumed (its ``run.json``); a family
        keeps that run's engine where it is available, so a run started before ``auto`` goes on
        as it began. Default: torch, the only engine of most families.
        """
        return "torch", {}

    def _use_backend(self, backend: str, **options: Any) -> None:
        """:meth:`set_backend` after ``auto`` is resolved; only families with another engine accept more."""
        if backend != "torch":
            raise ConfigError(f"the {self.family} family has no {backend!r} backend (only torch)")

    def clean_prediction(self, text: str) -> str:
        """Family-specific cleanup before scoring (e.g. strip SenseVoice tags)."""
        return text.strip()

    # --- training -------------------------------------------------------
    @property
    @abstractmethod
    def module(self) -> torch.nn.Module:
        """The torch module trained by the fine-tuning engine."""

    def _first_parameter(self) -> torch.Tensor | None:
        tensors = (t for ts in (self.module.parameters(), self.module.buffers()) for t in ts)
        return next((t for t in tensors if t.is_floating_point()), None)

    @property
    def param_dtype(self) -> torch.dtype:
        """The dtype of the module's weights now (a DeepSpeed or manual cast changes it; :attr:`dtype` does not).

        Inputs are cast to this at use time.
        """
        first = self._first_parameter()
        return first.dtype if first is not None else self.dtype

    @property
    def param_device(self) -> torch.device:
        """The device the module's weights are on now; inputs are moved there at use time."""
        first = self._first_parameter()
        return first.device if first is not None else self.device

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

    def disable_spec_augment(self) -> bool:
        """Turn the module's SpecAugment off (the trainer calls this for ``spec_augment: false``).

        transformers models: ``config.apply_spec_augment = False`` (wav2vec2 configs turn it
        on by default). Returns False when the module has no SpecAugment switch.
        """
        config = getattr(unwrap_peft(self.module), "config", None)
        if config is None or not hasattr(config, "apply_spec_augment"):
            return False
        config.apply_spec_augment = False
        return True

    def lora_targets(self) -> tuple[str, ...]:
        """The spec's LoRA target modules, else the family's default."""
        return self.spec.lora_targets or self.default_lora_targets

    def unknown_characters(self, texts: list[str]) -> dict[str, int]:
        """Characters the model cannot emit (CTC vocabularies); empty for open vocabularies."""
        return {}

    def to(self, device: torch.device | str) -> ASRModel:
        self.device = torch.device(device)
        self.module.to(self.device)
        return self
