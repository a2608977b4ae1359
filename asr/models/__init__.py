"""Models: one interface (:class:`ASRModel`), a registry of named models, family modules."""

from __future__ import annotations

from pathlib import Path

import torch

from asr.errors import ModelSourceError
from asr.models.base import ASRModel
from asr.models.checkpoint import safetensors_problem
from asr.models.registry import MODELS, family_class, get_spec
from asr.models.sources import resolve
from asr.models.spec import DecodeOptions, ModelSpec

__all__ = ["MODELS", "ASRModel", "DecodeOptions", "ModelSpec", "get_spec", "load_model", "pick_device"]


def pick_device(device: str = "auto") -> torch.device:
    """``auto`` -> cuda when available, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def bf16_supported() -> bool:
    """Native bf16 on the current GPU (compute capability 8.0+: A100, H100, RTX 30xx/40xx ...).

    ``torch.cuda.is_bf16_supported()`` also counts emulation, so on a T4 or V100 it says True
    and bf16 would run slowly, emulated; fp16 is the right choice there.
    """
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # torch without the including_emulation switch
        major, _minor = torch.cuda.get_device_capability()
        return major >= 8


def pick_dtype(device: torch.device, dtype: str = "auto") -> torch.dtype:
    """``auto`` -> bf16 on GPUs that support it, fp16 on other GPUs, fp32 on CPU."""
    if dtype != "auto":
        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if bf16_supported() else torch.float16
    return torch.float32


def load_model(model: str | Path, device: str = "auto", dtype: str = "auto") -> ASRModel:
    """Load a registered name, Hub id or local directory through its family.

    >>> m = load_model("runs/demo/whisper-base-lora/best", device="cpu")  # doctest: +SKIP
    """
    spec, path = resolve(str(model))
    for weights in sorted(path.glob("*.safetensors")):
        problem = safetensors_problem(weights)
        if problem:
            raise ModelSourceError(f"{weights} {problem}: copy, download or export it again")
    dev = pick_device(device)
    return family_class(spec.family).load(path, spec, dev, pick_dtype(dev, dtype))
