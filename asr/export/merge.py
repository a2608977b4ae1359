"""Turn a fine-tuning checkpoint into a folder that plain transformers (or funasr) loads.

Two modes:

- ``merged`` (default): the checkpoint is loaded through its family, a LoRA adapter is merged
  into the base weights (``ASRModel.merge_lora``), and the family's ``save_export`` writes
  safetensors weights, processor files and whatever else its tools read (e.g. Whisper's
  ``preprocessor_config.json``, funasr's tensors-only ``model.pt``).
- ``adapter``: the peft adapter (``adapter_config.json`` + ``adapter_model.safetensors``) and
  the processor files, copied byte for byte; the adapter's base is rewritten to the Hub id
  when it was a registered model, and the family adjusts the copy
  (``ASRModel.finish_adapter_export``).

>>> ckpt = inspect_checkpoint(Path("runs/whisper-base-lora/best"))  # doctest: +SKIP
>>> export_merged(ckpt, Path("runs/whisper-base-lora/export"))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.errors import ASRError, DataError, ModelSourceError
from asr.export.errors import ExportError
from asr.io import read_json, write_text
from asr.models import load_model
from asr.models.base import ASRModel
from asr.models.checkpoint import MARKER_FILE
from asr.models.registry import MODELS, family_class
from asr.models.sources import models_dir, resolve
from asr.models.spec import ModelSpec
from asr.run_dir import RunDir

log = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# Files an export may hold. Anything else (pickles above all) is refused; a top-level model.pt
# (funasr's weights) must be a tensors-only state dict, checked with torch.load(weights_only=True).
SAFE_SUFFIXES = (
    ".json",
    ".safetensors",
    ".txt",
    ".model",
    ".tiktoken",
    ".mvn",
    ".yaml",
    ".png",
    ".md",
    ".jinja",
)
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

    @property
    def family_class(self) -> type[ASRModel]:
        """The :class:`ASRModel` subclass of the checkpoint's family (class-level facts, no weights)."""
        return family_class(self.spec.family)


def _read_json(path: Path) -> dict:
    try:
        data = read_json(path)
    except DataError as err:
        raise ExportError(str(err)) from err
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "model.pt", ADAPTER_CONFIG)


def _refuse_run_folder(path: Path) -> None:
    """A fine-tuning run folder (``best/``, ``checkpoint-N/``, ``summary.json``) is not a checkpoint:
    say which of its checkpoints to pass instead."""
    if (path / MARKER_FILE).is_file() or any((path / name).is_file() for name in WEIGHT_FILES):
        return
    run = RunDir(path)
    best, steps = run.best_dir, run.checkpoints()
    records = any(f.is_file() for f in (run.summary_file, run.train_log_file, run.test_metrics_file))
    if not (best.is_dir() or steps or records):
        return  # not a run folder either: resolve() says what is missing
    if best.is_dir():
        raise ExportError(f"{path} is a fine-tuning run folder, not a checkpoint: pass --checkpoint {best}")
    if steps:
        raise ExportError(
            f"{path} is a fine-tuning run folder, not a checkpoint, and has no best/ yet (its training "
            f"stopped at {steps[0].name}): finish it with `asr finetune --config {run.config_file} "
            f"--resume`, which writes {best}, then pass --checkpoint {best}"
        )
    raise ExportError(
        f"{path} is a fine-tuning run folder, not a checkpoint, and holds no best/ or checkpoint-N/ to "
        "export (was it trained with save_checkpoints off, or moved?)"
    )


def inspect_checkpoint(path: Path) -> Checkpoint:
    """Check that ``path`` is a checkpoint this toolkit can export; raise :class:`ExportError` if not."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise ExportError(f"{path}: no such checkpoint directory (expected e.g. runs/<model>-<method>/best)")
    _refuse_run_folder(path)
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
        try:
            family_class(spec.family).check_full_weights(resolved)
        except ModelSourceError as err:
            raise ExportError(str(err)) from err
    return Checkpoint(path=resolved, spec=spec, adapter=adapter, base_ref=base_ref)


# --- merged --------------------------------------------------------------------------------------


def export_merged(ckpt: Checkpoint, out: Path) -> bool:
    """Write full (LoRA-merged) weights of ``ckpt`` to ``out``; returns True if a LoRA was merged."""
    model = load_model(ckpt.path, device="cpu", dtype="fp32")
    try:
        merged = model.merge_lora()
    except ASRError as err:
        raise ExportError(str(err)) from err
    out.mkdir(parents=True, exist_ok=True)
    model.save_export(out)
    for weights in out.glob("*.pt"):
        check_native_weights(weights)
    (out / "README.md").unlink(missing_ok=True)  # peft's template card; ours replaces it
    if (out / ADAPTER_CONFIG).exists():
        raise ExportError(f"{out}: the {ckpt.family} family saved an adapter after merging; export aborted")
    return merged


def check_native_weights(path: Path) -> None:
    """``model.pt`` must be a plain dict of tensors (loads with ``torch.load(weights_only=True)``)."""
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError and friends: anything but plain tensors
        raise ExportError(f"{path}: not a tensors-only state dict ({err})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ExportError(f"{path}: expected a dict of tensors")


# --- adapter only --------------------------------------------------------------------------------


def portable_base(ckpt: Checkpoint) -> str:
    """The adapter's base as others can load it: the Hub id of a registered model, else as recorded."""
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
    write_text(out / ADAPTER_CONFIG, json.dumps(config, indent=2, sort_keys=True) + "\n")
    ckpt.family_class.finish_adapter_export(ckpt.path, ckpt.spec, out)
    return base


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
