"""What ``asr finetune`` reads: :class:`FinetuneConfig` (YAML file + ``key=value`` overrides).

>>> cfg = load_finetune_config(None, ["model=my-model", "max_steps=200", "lora.r=16"])
>>> cfg.max_steps, cfg.lora.r, cfg.resolved_output_dir().as_posix()
(200, 16, 'runs/my-model-lora')

The model family's own settings sit in the free-form ``model_options`` section, which the family
checks once the model is known (``model_options.some_option=1``); such a key at the top level
is refused with a pointer to its place.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from asr.errors import ConfigError
from asr.models.registry import DEFAULT_MODEL, family_classes
from asr.typed_config import load_config

Method = Literal["lora", "full", "decoder"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]


# report_to names whose Python module has another name
REPORT_TO_MODULES = {"azure_ml": "azureml"}


@dataclass
class LoraSettings:
    """LoRA adapter: rank, scaling, dropout, target module names (default: the registry's).

    ``scope: decoder`` adapts only decoder modules, leaving the encoder frozen (and its
    output cacheable when SpecAugment and speed perturbation are off).
    """

    r: int = 32
    alpha: int = 64
    dropout: float = 0.05
    targets: list[str] | None = None
    scope: Literal["all", "decoder"] = "all"


@dataclass
class FinetuneConfig:
    """One fine-tuning run. ``None`` means "the model's registry default" where noted.

    ``max_nonfinite_steps``: a step whose loss or gradient norm is NaN or infinite (a broken
    clip, a learning rate too high for the precision) is skipped (no weight update, its
    gradients dropped) with a warning naming the step and its utterances; after more than
    ``max_nonfinite_steps`` such steps the run stops with an error (0: stop at the first).
    Under fp16 an overflowing gradient with a finite loss is the loss scaler's to skip and
    is not counted. Every float in a config must be finite (no ``nan``/``inf``).
    """

    model: str = DEFAULT_MODEL  # registry name, local checkpoint dir or Hub id
    method: Method = "lora"
    data: str = "runs/demo/data"  # a prepared dir with manifests/{train,validation,test}.jsonl
    train_manifest: str | None = None
    validation_manifest: str | None = None
    test_manifest: str | None = None
    output_dir: str | None = None  # default runs/<model>-<method>
    seed: int = 42
    max_steps: int | None = None  # overrides num_epochs when set
    num_epochs: float = 10.0
    batch_size: int | None = None  # per device; None: registry train_batch_size
    eval_batch_size: int | None = None  # None: registry eval_batch_size
    grad_accum: int = 1
    learning_rate: float | None = None  # None: registry value for the method
    warmup_ratio: float = 0.1
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_nonfinite_steps: int = 10  # skipped NaN/inf steps tolerated before the run stops (0: none)
    eval_steps: int = 100
    eval_on_start: bool = False  # also validate the starting model (step 0)
    save_steps: int | None = None  # None: eval_steps (must be a multiple of eval_steps)
    save_total_limit: int | None = 3
    patience: int | None = 5  # early stopping on validation CER; None or 0: off
    logging_steps: int = 10
    gradient_checkpointing: bool = False
    precision: Precision = "auto"  # auto: bf16 (or fp16) on GPU, fp32 on CPU
    lora: LoraSettings = field(default_factory=LoraSettings)
    spec_augment: bool | None = False  # None: keep the checkpoint's own (e.g. funasr's config.yaml)
    speed_perturb: list[float] = field(default_factory=list)  # e.g. [0.9, 1.0, 1.1]
    max_duration: float | None = 30.0  # drop longer training clips (seconds)
    # The model family's own training settings (its ASRModel.train_options_class), checked by the family
    model_options: dict[str, Any] = field(default_factory=dict)
    text_field: Literal["text_norm", "text"] = "text_norm"  # transcript the model learns
    num_workers: int = 2
    language: str | None = None  # None: the registry language
    eval_limit: int | None = None  # validate on the first N validation utterances only
    zero_shot: bool = True  # also score the base model on the test split for summary.json
    bootstrap: int = 1000  # resamples for the test CER intervals and the paired comparison
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    deepspeed: str | None = None  # e.g. configs/deepspeed/zero2.json
    device: Literal["auto", "cpu", "cuda"] = "auto"

    def validate(self) -> None:
        """Cross-field checks; every problem is a ConfigError before anything is loaded."""
        positive = {
            "grad_accum": self.grad_accum,
            "eval_steps": self.eval_steps,
            "logging_steps": self.logging_steps,
            "batch_size": self.batch_size,
            "eval_batch_size": self.eval_batch_size,
            "max_steps": self.max_steps,
            "save_total_limit": self.save_total_limit,
            "eval_limit": self.eval_limit,
            "lora.r": self.lora.r,
            "lora.alpha": self.lora.alpha,
        }
        for key, value in positive.items():
            if value is not None and value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        if self.max_steps is None and self.num_epochs <= 0:
            raise ConfigError(f"num_epochs must be positive, got {self.num_epochs}")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ConfigError(f"learning_rate must be positive, got {self.learning_rate}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0.0 <= self.lora.dropout < 1.0:
            raise ConfigError(f"lora.dropout must be in [0, 1), got {self.lora.dropout}")
        if self.save_steps is not None and (self.save_steps < 1 or self.save_steps % self.eval_steps):
            raise ConfigError(
                f"save_steps ({self.save_steps}) must be a positive multiple of eval_steps ({self.eval_steps}): "
                "the best checkpoint is chosen among validated ones"
            )
        if self.patience is not None and self.patience < 0:
            raise ConfigError(f"patience must be >= 0, got {self.patience}")
        if self.max_duration is not None and self.max_duration <= 0:
            raise ConfigError(f"max_duration must be positive, got {self.max_duration}")
        if any(f <= 0 for f in self.speed_perturb):
            raise ConfigError(f"speed_perturb factors must be positive, got {self.speed_perturb}")
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0, got {self.num_workers}")
        if self.bootstrap < 0:
            raise ConfigError(f"bootstrap must be >= 0, got {self.bootstrap}")
        if self.max_nonfinite_steps < 0:
            raise ConfigError(f"max_nonfinite_steps must be >= 0, got {self.max_nonfinite_steps}")
        if self.weight_decay < 0:
            raise ConfigError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.max_grad_norm < 0:
            raise ConfigError(f"max_grad_norm must be >= 0 (0: no clipping), got {self.max_grad_norm}")
        if not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be between 0 and 2**32 - 1 (numpy's range), got {self.seed}")
        for tracker in self.report_to:
            module = REPORT_TO_MODULES.get(tracker, tracker)
            if tracker not in ("none", "all") and importlib.util.find_spec(module) is None:
                raise ConfigError(
                    f"report_to: {tracker} is not installed (pip install {module}); install it or drop it "
                    "from report_to (default: [tensorboard])"
                )

    # --- resolved paths -------------------------------------------------
    def manifest(self, split: str) -> Path:
        """The manifest of ``split`` (train, validation, test)."""
        explicit = getattr(self, f"{split}_manifest")
        return Path(explicit) if explicit else Path(self.data) / "manifests" / f"{split}.jsonl"

    def resolved_output_dir(self) -> Path:
        """``output_dir``, or ``runs/<model>-<method>``."""
        if self.output_dir:
            return Path(self.output_dir)
        return Path("runs") / f"{Path(self.model).name}-{self.method}"

    @property
    def save_every(self) -> int:
        """Checkpoint interval in steps (``save_steps``, else ``eval_steps``)."""
        return self.save_steps or self.eval_steps


def load_finetune_config(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> FinetuneConfig:
    """Defaults, then the YAML file, then ``key=value`` overrides (nested: ``lora.r=16``)."""
    try:
        return load_config(FinetuneConfig, path, overrides)
    except ConfigError as err:
        key = getattr(err, "unknown_key", None)
        owners = [cls.family for cls in family_classes() if key in _field_names(cls.train_options_class)]
        if not owners:
            raise
        raise ConfigError(
            f"{err.where}: {key!r} is a model option now ({' and '.join(owners)} family): "
            f"write it in the model_options section (override: model_options.{key}=...)"
        ) from None


def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}
