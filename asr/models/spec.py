"""Registry entries: what the toolkit knows about a named model before loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class License:
    """A model licence as Hub metadata: an SPDX-like ``id``, or ``other`` with a ``name`` and ``link``."""

    id: str = "other"
    name: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class ModelSpec:
    """One registered model.

    ``family`` picks the implementation (``whisper``, ``ctc``, ``funasr``);
    ``hub_id``/``modelscope_id`` say where weights come from; ``license`` is the base
    model's (``other`` when unknown); the rest are defaults that configs and the CLI may
    override.
    """

    name: str
    family: str
    hub_id: str | None = None
    modelscope_id: str | None = None
    language: str = "zh"
    task: str = "transcribe"
    beam_size: int = 1
    lora_targets: tuple[str, ...] = ()
    eval_batch_size: int = 16
    train_batch_size: int = 8
    learning_rate: dict[str, float] = field(default_factory=dict)
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    license: License = License()

    def as_dict(self) -> dict[str, Any]:
        """The spec as recorded in metrics.json (the licence is the model card's, not a setting)."""
        d = asdict(self)
        d["lora_targets"] = list(self.lora_targets)
        del d["license"]
        return d


@dataclass(frozen=True)
class DecodeOptions:
    """Decoding settings shared by all families (each family reads what applies to it).

    The hallucination guard caps new tokens at ``max_tokens_per_second * duration +
    min_new_tokens`` and stops a hypothesis whose tail repeats a pattern
    ``repeat_limit`` times; its settings are recorded in metrics.json.
    """

    beam_size: int = 1
    language: str | None = "zh"
    task: str = "transcribe"
    guard: bool = True
    max_tokens_per_second: float = 12.0
    min_new_tokens: int = 12
    repeat_limit: int = 4
    repeat_max_period: int = 16
    # Whisper checkpoints at 30 s only: pack short clips into 30 s windows (opt-in; see whisper_packing)
    packing: bool = False
    packing_gap_s: float = 1.0
    audio_context: str | None = (
        None  # Whisper: full | auto | seconds; None: the checkpoint's own (see whisper_context)
    )
    context: str | None = (
        None  # context/hot-word prompt for models that take one (Qwen3-ASR); others ignore it
    )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
