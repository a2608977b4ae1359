"""Preparing a loaded model for fine-tuning: trainable parameters, learning rate, memory switches."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from asr.errors import ConfigError
from asr.models.base import ASRModel
from asr.train.finetune_config import FinetuneConfig

log = logging.getLogger(__name__)

# Used when a model has no registry learning rate for the method (Hub ids, unregistered dirs).
FALLBACK_LEARNING_RATE = {"lora": 1e-3, "full": 1e-5, "decoder": 1e-5}


def apply_language(asr_model: ASRModel, language: str | None) -> None:
    """Override the model's decoding language (``None``: keep the registry's)."""
    if language:
        asr_model.spec = dataclasses.replace(asr_model.spec, language=language)


def configure_model(asr_model: ASRModel, cfg: FinetuneConfig) -> Any:
    """The family's options, trainable parameters (method, LoRA), language, SpecAugment, gradient
    checkpointing. Returns the family's training options (``model_options`` with its defaults)."""
    apply_language(asr_model, cfg.language)
    options = asr_model.train_options(cfg.model_options)
    asr_model.configure_training(options)
    _set_trainable(asr_model, cfg)
    if cfg.spec_augment is True and not asr_model.enable_spec_augment():
        log.warning(
            "spec_augment=true: the %s family has no SpecAugment switch; training without it",
            asr_model.family,
        )
    elif cfg.spec_augment is False and asr_model.disable_spec_augment():
        log.info("spec_augment=false: the checkpoint's own SpecAugment is turned off")
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(asr_model)
    for warning in asr_model.training_setup_warnings():
        log.warning("%s", warning)
    return options


def _set_trainable(asr_model: ASRModel, cfg: FinetuneConfig) -> None:
    lora: dict[str, Any] = {
        "r": cfg.lora.r,
        "alpha": cfg.lora.alpha,
        "dropout": cfg.lora.dropout,
        "scope": cfg.lora.scope,
    }
    if cfg.lora.targets:
        lora["targets"] = list(cfg.lora.targets)
    try:
        asr_model.set_trainable(cfg.method, lora if cfg.method == "lora" else None)
    except ValueError as err:  # e.g. peft: LoRA target modules not found
        hint = " (set lora.targets to module names of this model)" if cfg.method == "lora" else ""
        raise ConfigError(f"cannot set up method={cfg.method} on {cfg.model}: {err}{hint}") from err
    if not any(p.requires_grad for p in asr_model.module.parameters()):
        raise ConfigError(f"method={cfg.method} leaves no trainable parameter in {asr_model.spec.name}")


def enable_gradient_checkpointing(asr_model: ASRModel) -> None:
    """Turn on non-reentrant activation checkpointing where the family's module supports it."""
    module = asr_model.module
    # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DDP's unused-parameter search.
    kwargs = {"use_reentrant": False}
    if hasattr(module, "activation_checkpointing_enable"):
        module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    elif hasattr(module, "gradient_checkpointing_enable"):
        module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    else:
        log.warning("gradient_checkpointing=true: not supported by the %s family; ignored", asr_model.family)
        return
    if hasattr(module, "enable_input_require_grads"):
        module.enable_input_require_grads()


def parameter_counts(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters, each shared tensor counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def learning_rate(cfg: FinetuneConfig, asr_model: ASRModel) -> float:
    """``learning_rate`` from the config, else the registry's for the method, else a fallback."""
    if cfg.learning_rate is not None:
        return cfg.learning_rate
    return float(asr_model.spec.learning_rate.get(cfg.method, FALLBACK_LEARNING_RATE[cfg.method]))
