"""LoRA for every family (apply, merge) and the checkpoint directories of the transformers families."""

from __future__ import annotations

import copy as _copy
import json
import logging
from pathlib import Path
from typing import Any

import torch

from asr.models.checkpoint import cast_state, write_marker
from asr.models.sources import resolve
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
        exclude_modules=cfg.get("exclude"),  # e.g. Whisper's frozen cross-attention key/value projections
        modules_to_save=list(cfg.get("modules_to_save") or []) or None,  # e.g. a new CTC lm_head
    )
    return get_peft_model(model, config)


def is_peft(module: torch.nn.Module) -> bool:
    """True for a peft-wrapped module (one :func:`merge_lora` can merge)."""
    from peft import PeftModel

    return isinstance(module, PeftModel)


def merge_lora(
    module: torch.nn.Module,
    *,
    copy: bool = False,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> torch.nn.Module:
    """The plain module with its LoRA adapter merged into the weights (``module`` itself without one).

    Merges in place unless ``copy``, which merges a deep copy and leaves ``module`` as it was.
    ``dtype``/``device`` (with ``copy``): the copy is made there before merging, e.g. fp32 on the
    CPU so a bf16 training cast does not round the merge (the original's tensors are never
    duplicated on its own device).
    """
    if not is_peft(module):
        if copy and (dtype is not None or device is not None):
            return copy_module(module, dtype=dtype, device=device)
        return module
    if copy:
        module = copy_module(module, dtype=dtype, device=device)
    return module.merge_and_unload()


def copy_module(
    module: torch.nn.Module, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None
) -> torch.nn.Module:
    """A deep copy of ``module`` whose floating-point tensors are ``dtype`` on ``device`` (tied stay tied)."""
    if dtype is None and device is None:
        return _copy.deepcopy(module)

    def moved(t: torch.Tensor) -> torch.Tensor:
        # copy=True: never share storage with the original (merging the copy must not touch it)
        return t.detach().to(device=device, dtype=dtype if t.is_floating_point() else None, copy=True)

    memo: dict[int, Any] = {}
    for p in module.parameters():
        memo.setdefault(id(p), torch.nn.Parameter(moved(p), requires_grad=p.requires_grad))
    for b in module.buffers():
        memo.setdefault(id(b), moved(b))
    return _copy.deepcopy(module, memo)


def load_with_adapter(path: Path, model_cls: Any, dtype: torch.dtype) -> tuple[torch.nn.Module, Path]:
    """Load a full checkpoint, or base model + LoRA adapter when ``path`` holds an adapter.

    Returns the model and the directory its base weights came from.
    """
    adapter_cfg = path / "adapter_config.json"
    if not adapter_cfg.is_file():
        return model_cls.from_pretrained(path, dtype=dtype), path
    from peft import PeftModel

    base_ref = json.loads(adapter_cfg.read_text(encoding="utf-8"))["base_model_name_or_path"]
    _, base_path = resolve(base_ref)
    base = model_cls.from_pretrained(base_path, dtype=dtype)
    return PeftModel.from_pretrained(base, path), base_path


def save_model_dir(
    model: torch.nn.Module, out_dir: Path, family: str, spec: ModelSpec, dtype: torch.dtype | None = None
) -> None:
    """Save weights as safetensors (adapter only for LoRA models) plus the family marker.

    ``dtype``: write floating-point weights in this dtype (the checkpoint's own), whatever the
    module was cast to for training or decoding; ``config.json`` records it too.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    kwargs: dict[str, Any] = {"safe_serialization": True}
    if dtype is not None and any(
        t.is_floating_point() and t.dtype != dtype for t in model.state_dict().values()
    ):
        kwargs["state_dict"] = cast_state(model.state_dict(), dtype)
    if hasattr(model, "peft_config"):
        # Embeddings are never LoRA targets here; peft's "auto" probe breaks on models without
        # input embeddings (wav2vec2). Trained heads are saved through modules_to_save.
        model.save_pretrained(out_dir, save_embedding_layers=False, **kwargs)
    else:
        model.save_pretrained(out_dir, **kwargs)
        if dtype is not None:
            _record_dtype(out_dir / "config.json", dtype)
    write_marker(out_dir, family, spec.name, adapter=(out_dir / "adapter_config.json").is_file())


def _record_dtype(config_file: Path, dtype: torch.dtype) -> None:
    """transformers writes the module's dtype into config.json; record the dtype actually saved."""
    if not config_file.is_file():
        return
    data = json.loads(config_file.read_text(encoding="utf-8"))
    name = str(dtype).removeprefix("torch.")
    changed = False
    for key in ("dtype", "torch_dtype"):
        if key in data and data[key] != name:
            data[key] = name
            changed = True
    if changed:
        config_file.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
