"""Registry entries: what the toolkit knows about a named model before loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
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

    ``family`` picks the implementation (a key of ``asr.models.registry.FAMILIES``);
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
    """Decoding settings every family understands; a family extends them with its own
    (a subclass, see ``ASRModel.decode_options``), which metrics.json records beside these.

    The hallucination guard caps new tokens at ``max_tokens_per_second * duration +
    min_new_tokens`` and stops a hypothesis whose tail repeats a pattern
    ``repeat_limit`` times; its settings are recorded in metrics.json. ``language`` is the
    registry's language code (``None``: the model detects it, where it can).
    """

    beam_size: int = 1
    language: str | None = "zh"
    guard: bool = True
    max_tokens_per_second: float = 12.0
    min_new_tokens: int = 12
    repeat_limit: int = 4
    repeat_max_period: int = 16
    context: str | None = (
        None  # context/hot-word prompt for models that take one (Qwen3-ASR, Fun-ASR-Nano; Whisper as its previous-text prompt); others ignore it
    )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def shared(self) -> dict[str, Any]:
        """Only the settings declared here (a family subclass's own fields left out)."""
        return {f.name: getattr(self, f.name) for f in fields(DecodeOptions)}
