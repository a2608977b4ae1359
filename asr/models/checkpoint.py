"""Checkpoint helpers every family and the registry share: a leaf that imports no other model module.

The marker file, dtype detection from safetensors headers, casting a state dict, unwrapping peft.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import torch

from asr.io import write_text

SAMPLE_RATE = 16_000
MARKER_FILE = "cs_mage_asr.json"  # written by save(): family + registry name, read back by sources


def unwrap_peft(module: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a peft wrapper (the module itself when it has none)."""
    return module.get_base_model() if hasattr(module, "get_base_model") else module


_SAFETENSORS_DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F64": torch.float64,
}


def safetensors_dtype(path: Path) -> torch.dtype | None:
    """The dtype of the first floating-point tensor in a ``.safetensors`` file (header only), or None.

    >>> safetensors_dtype(Path("model.safetensors"))  # doctest: +SKIP
    torch.float32
    """
    try:
        with path.open("rb") as f:
            size = int.from_bytes(f.read(8), "little")
            if not 0 < size < 100_000_000:
                return None
            header = json.loads(f.read(size))
    except (OSError, ValueError):
        return None
    for name, info in header.items():
        if name != "__metadata__" and isinstance(info, dict) and info.get("dtype") in _SAFETENSORS_DTYPES:
            return _SAFETENSORS_DTYPES[info["dtype"]]
    return None


def checkpoint_dtype(path: Path) -> torch.dtype | None:
    """The dtype a checkpoint directory stores its weights in (adapter weights for a LoRA folder).

    Reads the safetensors headers only; None when there are none (pickled weights).
    """
    names = ("adapter_model.safetensors",) if (path / "adapter_config.json").is_file() else ()
    names += ("model.safetensors",)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError):
            shards = []
        names += tuple(shards[:1])
    for name in names:
        if (path / name).is_file():
            found = safetensors_dtype(path / name)
            if found is not None:
                return found
    return None


def cast_state(state: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """``state`` with every floating-point tensor as ``dtype`` on the CPU (others moved to the CPU).

    Tensors sharing storage (tied weights) stay shared, so savers still see one tensor.
    """
    done: dict[tuple[int, torch.dtype, tuple[int, ...], tuple[int, ...], int], torch.Tensor] = {}
    out = {}
    for key, value in state.items():
        value = value.detach()
        target = dtype if value.is_floating_point() else value.dtype
        alias = (
            value.untyped_storage().data_ptr(),
            value.dtype,
            tuple(value.shape),
            value.stride(),
            value.storage_offset(),
        )
        if alias not in done:
            done[alias] = value.to("cpu", target)
        out[key] = done[alias]
    return out


def write_marker(out_dir: Path, family: str, name: str, **extra: Any) -> None:
    """Write :data:`MARKER_FILE` (family, registry name, extras) into a saved checkpoint."""
    write_text(out_dir / MARKER_FILE, json.dumps({"family": family, "name": name, **extra}, indent=2))


def safetensors_problem(path: Path) -> str | None:
    """A safetensors file must hold its whole header and every tensor its header lists."""
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                return "is cut short (no header)"
            (length,) = struct.unpack("<Q", head)
            if length > size - 8:
                return "is cut short (in its header)"
            header = json.loads(handle.read(length))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "has an unreadable header"
    ends = [
        int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)
    ]
    if 8 + length + max(ends, default=0) > size:
        return "is cut short (its tensors end past the end of the file)"
    return None
