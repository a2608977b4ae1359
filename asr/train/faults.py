"""What a fine-tuning run does when something goes wrong under it: errors, checkpoint checks, write failures.

- :class:`~asr.errors.TrainingError` (raised by the trainer and recipe): the run cannot go on (non-finite training, a checkpoint it cannot
  write, non-finite best weights); the CLI prints it and exits with status 2;
- :func:`checkpoint_problem`: why a ``checkpoint-N/`` folder is not a complete checkpoint
  (a kill or a full disk while it was written), or None;
- :func:`non_finite_tensors`: the names of the floating-point tensors holding NaN or infinity.

(:func:`asr.disk.write_failure` explains a failed write.)
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable
from pathlib import Path

import torch

from asr.models.checkpoint import safetensors_problem

# The files a Trainer checkpoint folder holds, in the order the Trainer writes them: the model
# (one of WEIGHT_FILES, with training_args.bin), optimizer.pt, scheduler.pt, rng_state*.pth and,
# last, trainer_state.json.
TRAINER_STATE = "trainer_state.json"
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_model.bin",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
OPTIMIZER_FILES = ("optimizer.pt", "scheduler.pt")


def checkpoint_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete Trainer checkpoint (a missing or cut file), or None when it is."""
    folder = Path(folder)
    state = folder / TRAINER_STATE
    if not state.is_file():
        return f"no {TRAINER_STATE} (the Trainer writes it last)"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return f"{TRAINER_STATE} is cut short or unreadable"
    weights = [folder / name for name in WEIGHT_FILES if (folder / name).is_file()]
    deepspeed = (folder / "latest").is_file()  # a DeepSpeed engine checkpoint (global_stepN/)
    if not weights and not deepspeed:
        return f"no model weights ({' or '.join(WEIGHT_FILES[:2])})"
    if not deepspeed:
        for name in OPTIMIZER_FILES:
            if not (folder / name).is_file():
                return f"no {name}"
    if not list(folder.glob("rng_state*.pth")):
        return "no rng_state.pth"
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        problem = None
        if path.suffix == ".safetensors":
            problem = safetensors_problem(path)
        elif path.suffix in (".pt", ".pth", ".bin"):
            problem = _torch_file_problem(path)
        if problem:
            return f"{path.name} {problem}"
    return None


def _torch_file_problem(path: Path) -> str | None:
    """``torch.save`` writes a zip archive, whose directory comes last: a cut file has none."""
    try:
        if path.stat().st_size == 0:
            return "is empty"
        with path.open("rb") as handle:
            is_zip = handle.read(4) == b"PK\x03\x04"
    except OSError:
        return "is unreadable"
    if is_zip and not zipfile.is_zipfile(path):
        return "is cut short (no zip directory at its end)"
    return None


def non_finite_tensors(named: Iterable[tuple[str, torch.Tensor]]) -> list[str]:
    """Names of the floating-point tensors in ``named`` that hold a NaN or an infinity."""
    bad = []
    for name, tensor in named:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            bad.append(name)
    return bad
