"""Checks a fine-tuning run makes before any compute: model reference and options, device, DeepSpeed,
vocabulary."""

from __future__ import annotations

import glob
import importlib.util
import logging
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import torch

from asr.errors import ConfigError, DataError
from asr.io import write_json
from asr.models import bf16_supported
from asr.models.base import ASRModel
from asr.models.registry import MODELS, family_class, unknown_model
from asr.models.sources import detect_family
from asr.text.normalize import normalize
from asr.train.finetune_config import FinetuneConfig

log = logging.getLogger(__name__)


def check_model_reference(model: str) -> None:
    """A registered name, an existing directory or an ``org/name`` Hub id; else the known names."""
    path = Path(model).expanduser()
    if path.is_dir() or model in MODELS:
        return
    if model.startswith((".", "/", "~")) or path.exists() or model.count("/") > 1:
        raise ConfigError(f"model: {model}: no such model directory")
    if "/" not in model:
        raise unknown_model(model)
    # org/name: a Hub id, fetched when the model is loaded


def check_model_options(cfg: FinetuneConfig) -> None:
    """The family's check of ``model_options`` where the family is known before loading (a
    registered name or a local directory); for a Hub id it runs once the model is loaded."""
    path = Path(cfg.model).expanduser()
    if cfg.model in MODELS:
        family = MODELS[cfg.model].family
    elif path.is_dir():
        family = detect_family(path)[0]
    else:
        return
    family_class(family).train_options(cfg.model_options)


def check_single_process_multi_gpu(cfg: FinetuneConfig, device: str) -> None:
    """Several visible GPUs in one process (no torchrun) would make the Trainer use ``nn.DataParallel``.

    DataParallel replicates the Trainer's :class:`~asr.train.trainer.LossModule`, whose forward
    runs the family's own module on ``cuda:0``: some families fail on a device mismatch, others
    silently train on one GPU with the batch multiplied. DeepSpeed sets up its own
    process group and uses one GPU per process, so it is not affected.
    """
    if device != "cuda" or cfg.deepspeed is not None:
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # launched by torchrun: one GPU per process (DDP)
        return
    n = torch.cuda.device_count()
    if n > 1:
        raise ConfigError(
            f"{n} GPUs are visible to a single process: launch one process per GPU with "
            f"`torchrun --nproc_per_node {n} -m asr.cli finetune ...`, or train on one GPU with "
            "`CUDA_VISIBLE_DEVICES=0 asr finetune ...` (a single process would fall back to "
            "nn.DataParallel, which this trainer does not support)"
        )


def nvidia_driver() -> str | None:
    """The NVIDIA driver's version (``/proc/driver/nvidia/version``, else ``nvidia-smi``); ``None``."""
    version_file = Path("/proc/driver/nvidia/version")
    if version_file.is_file():
        match = re.search(
            r"Kernel Module\s+(?:for \S+\s+)?([0-9][0-9.]+)", version_file.read_text(errors="replace")
        )
        if match:
            return match[1]
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.split()[0] if proc.returncode == 0 and proc.stdout.split() else None


def nvidia_devices_present() -> bool:
    """NVIDIA GPUs on this machine whatever torch says: ``/dev/nvidia0``... or ``nvidia-smi``."""
    return bool(glob.glob("/dev/nvidia[0-9]*")) or shutil.which("nvidia-smi") is not None


def cuda_unusable_reason() -> str | None:
    """Why torch cannot use the NVIDIA GPUs this machine has; ``None`` when it can or there are none.

    The usual cause is a torch wheel built for a newer CUDA than the driver supports (a CUDA 13
    wheel needs driver 580 or newer); torch says so in a warning when it first looks.
    """
    if not nvidia_devices_present():
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if torch.cuda.is_available():
            return None
    said = " ".join(str(w.message).strip() for w in caught)
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU-only build)"
    driver = nvidia_driver()
    return (
        f"this machine has NVIDIA GPUs (driver {driver or 'unknown'}) but torch {torch.__version__} "
        f"(built for {build}) cannot use them"
        + (f": {said}" if said else "")
        + "; install a torch build for the driver's CUDA version or update the driver"
    )


def device_and_precision(cfg: FinetuneConfig) -> tuple[str, str]:
    """``(device, precision)`` with ``auto`` resolved: bf16 (or fp16) on a GPU, fp32 on CPU.

    Where the machine has NVIDIA GPUs that torch cannot use (:func:`cuda_unusable_reason`),
    ``device: cuda`` fails and ``device: auto`` warns loudly before training on the CPU.
    Also refuses several GPUs in one process (see :func:`check_single_process_multi_gpu`).
    """
    cuda = torch.cuda.is_available()
    if cfg.device in ("cuda", "auto") and not cuda:
        problem = cuda_unusable_reason()
        if cfg.device == "cuda":
            raise ConfigError(
                f"device=cuda: {problem}" if problem else "device=cuda but no CUDA GPU is visible"
            )
        if problem:
            log.warning("device=auto trains on the CPU, in fp32, SLOWLY: %s", problem)
            warnings.warn(f"device=auto falls back to the CPU: {problem}", RuntimeWarning, stacklevel=2)
    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu"
    precision = cfg.precision
    if precision == "auto" and device == "cuda":
        precision = "bf16" if bf16_supported() else "fp16"
    elif precision == "auto":
        precision = "fp32"
    if precision in ("bf16", "fp16") and device != "cuda":
        raise ConfigError(f"precision={precision} needs a GPU; use precision=fp32 (or auto) on CPU")
    check_single_process_multi_gpu(cfg, device)
    return device, precision


def check_deepspeed(cfg: FinetuneConfig) -> None:
    """The DeepSpeed config file exists and the package is installed (when ``deepspeed`` is set)."""
    if cfg.deepspeed is None:
        return
    if not Path(cfg.deepspeed).is_file():
        raise ConfigError(f"deepspeed: {cfg.deepspeed}: file not found (e.g. configs/deepspeed/zero2.json)")
    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("deepspeed is not installed: pip install 'cs-mage-asr[deepspeed]'")


def check_vocabulary(asr_model: ASRModel, texts: list[str], out: Path | None) -> dict[str, int]:
    """Log (and write) characters the model cannot emit; error when no transcript has a known character."""
    unknown = asr_model.unknown_characters(texts)
    if not unknown:
        return {}
    normalized = [normalize(t) for t in texts]  # what the families check (punctuation is not scored)
    without_known = [t for t in normalized if not any(c not in unknown for c in t if not c.isspace())]
    with_unknown = sum(any(c in unknown for c in t) for t in normalized)
    ranked = dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
    report = {
        "model": asr_model.spec.name,
        "n_transcripts": len(texts),
        "transcripts_with_unknown": with_unknown,
        "transcripts_without_known_characters": len(without_known),
        "unknown_occurrences": sum(unknown.values()),
        "characters": ranked,
    }
    if out is not None:
        write_json(out / "unknown_characters.json", report)
    top = ", ".join(f"{c!r}x{n}" for c, n in list(ranked.items())[:10])
    log.warning(
        "%d distinct characters (%d occurrences, in %d of %d transcripts) are not in the %s vocabulary: %s",
        len(unknown),
        report["unknown_occurrences"],
        with_unknown,
        len(texts),
        asr_model.spec.name,
        top,
    )
    if len(without_known) == len(texts):
        raise DataError(
            f"none of the {len(texts)} training transcripts contains a character the {asr_model.spec.name} "
            f"vocabulary knows (most frequent unknown: {top}); this model cannot learn these transcripts"
        )
    return unknown
