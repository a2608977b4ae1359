"""Turn a fine-tuning checkpoint into a folder that plain transformers (or funasr) loads.

Two modes:

- ``merged`` (default): the checkpoint is loaded through its family, a LoRA adapter is merged
  into the base weights with peft's ``merge_and_unload``, and the family's ``save`` writes
  safetensors weights plus processor files. Whisper also gets a generation config that decodes
  the fine-tuned language and task without timestamps, and ``preprocessor_config.json``
  (read by older transformers and by faster-whisper). funasr folders also get ``model.pt``
  (a tensors-only state dict), because funasr's ``AutoModel`` reads nothing else.
- ``adapter``: the peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``) and
  the processor files, copied byte for byte; the adapter's base is rewritten to the Hub id
  when it was a registered model.

>>> ckpt = inspect_checkpoint(Path("runs/whisper-base-lora/best"))  # doctest: +SKIP
>>> export_merged(ckpt, Path("runs/whisper-base-lora/export"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ModelSourceError
from asr.export.errors import ExportError
from asr.models.base import MARKER_FILE, ASRModel
from asr.models.spec import ModelSpec

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Files an export may hold. Anything else (pickles above all) is refused; funasr's model.pt is
# written by us as a tensors-only state dict and checked with torch.load(weights_only=True).
SAFE_SUFFIXES = (".json", ".safetensors", ".txt", ".model", ".tiktoken", ".mvn", ".yaml", ".png", ".md")
SAFE_NAMES = ("seg_dict",)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory as written by ``ASRModel.save``.

    ``adapter`` is True for a LoRA checkpoint; ``base_ref`` is then the adapter's
    ``base_model_name_or_path`` (a registry name, a local directory or a Hub id).
    """

    path: Path
    spec: ModelSpec
    adapter: bool
    base_ref: str | None = None

    @property
    def family(self) -> str:
        return self.spec.family


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(f"{path}: unreadable JSON ({err})") from err
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def inspect_checkpoint(path: Path) -> Checkpoint:
    """Check that ``path`` is a checkpoint this toolkit can export; raise :class:`ExportError` if not."""
    from asr.models.sources import resolve

    path = Path(path).expanduser()
    if not path.is_dir():
        raise ExportError(f"{path}: no such checkpoint directory (expected e.g. runs/<model>-<method>/best)")
    adapter = (path / ADAPTER_CONFIG).is_file()
    if adapter and not (path / MARKER_FILE).is_file():
        raise ExportError(
            f"{path} holds a LoRA adapter without {MARKER_FILE}, so its model family is unknown; "
            "export the checkpoint written by `asr finetune` (RUN/best)"
        )
    try:
        spec, resolved = resolve(str(path))
    except ModelSourceError as err:
        raise ExportError(f"{path} is not a checkpoint: {err}") from err
    base_ref = None
    if adapter:
        base_ref = _read_json(path / ADAPTER_CONFIG).get("base_model_name_or_path")
        if not base_ref:
            raise ExportError(
                f"{path / ADAPTER_CONFIG}: no base_model_name_or_path; cannot find the base model"
            )
        if not (path / ADAPTER_WEIGHTS).is_file():
            raise ExportError(
                f"{path}: {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS} (only safetensors adapters export)"
            )
    else:
        _check_full_weights(resolved, spec.family)
    return Checkpoint(path=resolved, spec=spec, adapter=adapter, base_ref=base_ref)


def _check_full_weights(path: Path, family: str) -> None:
    names = {p.name for p in path.iterdir()}
    if family == "funasr":
        if not names & {"model.safetensors", "model.pt"}:
            raise ExportError(f"{path}: config.yaml but no model.safetensors or model.pt")
        return
    if "model.safetensors" in names or "model.safetensors.index.json" in names:
        return
    pickled = sorted(names & {"pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5"})
    if pickled:
        raise ExportError(
            f"{path}: weights only as {pickled[0]}; exports are safetensors only "
            "(load and save it once with `asr finetune`/`ASRModel.save`, which writes model.safetensors)"
        )
    raise ExportError(f"{path}: config.json but no model.safetensors; the checkpoint is incomplete")


# --- merged --------------------------------------------------------------------------------------


def merge_lora(model: ASRModel) -> bool:
    """Merge a peft LoRA adapter into the base weights in place; False when there is none.

    The family keeps its module in an attribute (``model.model``, funasr's ``_peft``); that
    attribute is pointed at the merged module so the family's ``save`` writes full weights.
    """
    from peft import PeftModel

    wrapped = model.module
    if not isinstance(wrapped, PeftModel):
        return False
    merged = wrapped.merge_and_unload()
    holders = [name for name, value in vars(model).items() if value is wrapped]
    for name in holders:
        setattr(model, name, merged)
    if model.module is not merged:
        raise ExportError(
            f"cannot merge LoRA for the {model.family} family: its module is not held in a plain attribute"
        )
    return True


def _language_code(value: str | None) -> str | None:
    """``<|zh|>``, ``zh`` or ``chinese`` -> ``zh``."""
    from asr.models.whisper_assets import LANGUAGES

    if not value:
        return None
    code = value.strip().removeprefix("<|").removesuffix("|>").lower()
    if code in LANGUAGES:
        return code
    by_name = {name: c for c, name in LANGUAGES.items()}
    return by_name.get(code, code)


def whisper_language(checkpoint: Path, spec: ModelSpec) -> tuple[str | None, str]:
    """Language and task the checkpoint was fine-tuned for (its generation config, else the spec)."""
    gen = checkpoint / "generation_config.json"
    language, task = spec.language, spec.task
    if gen.is_file():
        data = _read_json(gen)
        language = _language_code(data.get("language")) or language
        task = data.get("task") or task
    return language, task


def export_merged(ckpt: Checkpoint, out: Path) -> bool:
    """Write full (LoRA-merged) weights of ``ckpt`` to ``out``; returns True if a LoRA was merged."""
    from asr.models import load_model

    model = load_model(ckpt.path, device="cpu", dtype="fp32")
    merged = merge_lora(model)
    if ckpt.family == "whisper":
        language, task = whisper_language(ckpt.path, ckpt.spec)
        model.configure_language(language, task)
    out.mkdir(parents=True, exist_ok=True)
    model.save(out)
    _finish_family_files(model, out)
    (out / "README.md").unlink(missing_ok=True)  # peft's template card; ours replaces it
    if (out / ADAPTER_CONFIG).exists():
        raise ExportError(f"{out}: the {ckpt.family} family saved an adapter after merging; export aborted")
    return merged


def _finish_family_files(model: ASRModel, out: Path) -> None:
    if model.family == "whisper":
        model.processor.feature_extractor.save_pretrained(out)  # preprocessor_config.json
    elif model.family == "funasr":
        from asr.models.funasr_checkpoint import write_native_weights

        write_native_weights(out)
        check_native_weights(out / "model.pt")


def check_native_weights(path: Path) -> None:
    """``model.pt`` must be a plain dict of tensors (loads with ``torch.load(weights_only=True)``)."""
    import torch

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError and friends: anything but plain tensors
        raise ExportError(f"{path}: not a tensors-only state dict ({err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{path}: expected a dict of tensors")


# --- adapter only --------------------------------------------------------------------------------


def portable_base(ckpt: Checkpoint) -> str:
    """The adapter's base as others can load it: the Hub id of a registered model, else as recorded."""
    from asr.models.registry import MODELS
    from asr.models.sources import models_dir

    ref = ckpt.base_ref or ""
    if ref in MODELS and MODELS[ref].hub_id:
        return MODELS[ref].hub_id
    name = ckpt.spec.name
    local_copy = models_dir() / name
    is_local_copy = Path(ref).is_dir() and local_copy.is_dir() and Path(ref).resolve() == local_copy.resolve()
    if name in MODELS and MODELS[name].hub_id and is_local_copy:
        return MODELS[name].hub_id
    if Path(ref).is_absolute() or ref.startswith("."):
        log.warning(
            "the adapter's base is the local directory %s: others cannot load this adapter from the Hub "
            "unless they have that model; consider the merged export instead",
            ref,
        )
    return ref


def export_adapter(ckpt: Checkpoint, out: Path) -> str:
    """Copy the LoRA adapter and processor files of ``ckpt`` to ``out``; returns the adapter's base."""
    if not ckpt.adapter:
        raise ExportError(
            f"{ckpt.path} holds full weights, not a LoRA adapter; --adapter-only needs a LoRA checkpoint "
            "(drop --adapter-only to export the full weights)"
        )
    out.mkdir(parents=True, exist_ok=True)
    for src in sorted(ckpt.path.iterdir()):
        if src.is_file() and src.name != "README.md" and is_safe_file(src):
            shutil.copyfile(src, out / src.name)
        elif src.is_file() and src.name != "README.md":
            log.warning("not exporting %s (not a safetensors/JSON/text file)", src)
    base = portable_base(ckpt)
    config = _read_json(out / ADAPTER_CONFIG)
    config["base_model_name_or_path"] = base
    (out / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if ckpt.family == "whisper":
        _set_whisper_generation(ckpt, out)
    return base


def _set_whisper_generation(ckpt: Checkpoint, out: Path) -> None:
    path = out / "generation_config.json"
    if not path.is_file():
        return
    data = _read_json(path)
    language, task = whisper_language(ckpt.path, ckpt.spec)
    data.update(
        language=f"<|{language}|>" if language else None,
        task=task,
        return_timestamps=False,
        forced_decoder_ids=None,
    )
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def is_safe_file(path: Path) -> bool:
    """True for files an export may publish (no pickles; funasr's tensors-only ``model.pt`` aside)."""
    return path.suffix in SAFE_SUFFIXES or path.name in SAFE_NAMES


def check_no_pickles(folder: Path) -> None:
    """Refuse an export folder holding files that are not safetensors/JSON/text (pickles above all)."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if path.name == "model.pt" and path.parent == folder:
            check_native_weights(path)
        elif rel.parts[0] == "ct2":
            continue  # CTranslate2's own binary format (model.bin) plus JSON
        elif not is_safe_file(path):
            raise ExportError(f"{path}: unexpected file in the export (only safetensors, JSON and text)")
