"""Checkpoint directories shared by the transformers families: LoRA, adapters, markers."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import torch

from asr.models.base import MARKER_FILE
from asr.models.spec import ModelSpec

log = logging.getLogger(__name__)

LORA_DEFAULTS: dict[str, Any] = {"r": 32, "alpha": 64, "dropout": 0.05}


def apply_lora(model: torch.nn.Module, lora: dict[str, Any], default_targets: tuple[str, ...]):
    """Wrap ``model`` with a peft LoRA adapter (base weights frozen)."""
    from peft import LoraConfig, get_peft_model

    cfg = {**LORA_DEFAULTS, **lora}
    targets: str | list[str] = cfg.get("targets") or list(default_targets)
    if cfg.get("scope", "all") == "decoder":  # leave the encoder untouched (and cacheable)
        names = "|".join(targets) if isinstance(targets, list) else targets
        targets = rf".*decoder.*\.({names})"
    elif not isinstance(targets, str):
        targets = list(targets)
    config = LoraConfig(
        r=int(cfg["r"]),
        lora_alpha=int(cfg["alpha"]),
        lora_dropout=float(cfg["dropout"]),
        target_modules=targets,
        modules_to_save=list(cfg.get("modules_to_save") or []) or None,  # e.g. a new CTC lm_head
    )
    return get_peft_model(model, config)


def load_with_adapter(path: Path, model_cls: Any, dtype: torch.dtype) -> tuple[torch.nn.Module, Path]:
    """Load a full checkpoint, or base model + LoRA adapter when ``path`` holds an adapter.

    Returns the model and the directory its base weights came from.
    """
    adapter_cfg = path / "adapter_config.json"
    if not adapter_cfg.is_file():
        return model_cls.from_pretrained(path, dtype=dtype), path
    from peft import PeftModel

    from asr.models.sources import resolve

    base_ref = json.loads(adapter_cfg.read_text(encoding="utf-8"))["base_model_name_or_path"]
    _, base_path = resolve(base_ref)
    base = model_cls.from_pretrained(base_path, dtype=dtype)
    return PeftModel.from_pretrained(base, path), base_path


def save_model_dir(model: torch.nn.Module, out_dir: Path, family: str, spec: ModelSpec) -> None:
    """Save weights as safetensors (adapter only for LoRA models) plus the family marker."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if hasattr(model, "peft_config"):
        # Embeddings are never LoRA targets here; peft's "auto" probe breaks on models without
        # input embeddings (wav2vec2). Trained heads are saved through modules_to_save.
        model.save_pretrained(out_dir, safe_serialization=True, save_embedding_layers=False)
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
    marker = {"family": family, "name": spec.name, "adapter": (out_dir / "adapter_config.json").is_file()}
    (out_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2), encoding="utf-8")
