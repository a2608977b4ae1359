"""The sections of ``tools.gpu_check``, one per process: ``python -m tools.gpu_sections NAME ...``.

Every import beyond the standard library happens inside a section, so a missing package is that
section's skip (``blocking``: the check fails unless ``--allow-skip NAME``), never a traceback
before the first section. Models are replicas of the published checkpoints (real dimensions,
random weights, :func:`tests.model_factory.build` with ``size="real"``); the audio is synthetic
(tones and noise, CS-Mage-like durations of 2-12 s: 760 training, 160 validation and 165 test
clips). ``--smoke`` shrinks everything (1-layer replicas, 8 clips, 2 steps) and on the CPU runs
what has a CPU form (fp32 instead of fp16/bf16, torchrun with gloo).

- ``environment``: torch, CUDA, cuDNN, GPU, bf16 support; why CUDA is unusable where it is;
- ``corpus``: the synthetic WAVs (stdlib ``wave``) and manifests in the scratch folder;
- ``whisper_small_lora_bf16`` / ``_fp32`` / ``whisper_small_full``: one epoch over the training
  clips: steady-state utterances/s (the first steps, warm-up, excluded), peak GPU memory, the loss;
- ``gpu_vs_cpu``: the same clips and weights on the device and on the CPU: greedy transcripts
  identical in fp32 (TF32 off), the bf16 loss within 2% of the fp32 CPU loss; then optimizer
  steps on one fixed batch on the device: the loss must fall by a third;
- ``turbo_eval_torch`` / ``turbo_eval_ct2``: whisper-large-v3-turbo evaluation in fp16 (torch,
  then CTranslate2 float16, whose CUDA 12 libraries are looked for before any conversion);
- ``paraformer_large_train`` / ``sensevoice_small_train``: 20 steps (funasr);
- ``qwen3_asr_lora``: the audio-LLM family, Qwen3-ASR 0.6B with LoRA in bf16;
- ``torchrun_nproc1`` / ``deepspeed_zero2``: whisper-small under ``torchrun``, without and with
  DeepSpeed ZeRO-2 (``configs/deepspeed/zero2.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import importlib.util
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import time
import traceback
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# Characters of the synthetic transcripts: common Changsha-dialect ones that every replica's
# vocabulary holds (the placeholder character vocabularies start at U+4E00).
CHARACTERS = "一七三上下不中么了事人今他们以会你做倒儿先光全公冇出到前即去又口只可吃各合吧呀呢咯咧哒哪唔喊嗯在坐块声大天太女好如妈子孩它宝家对小就屋崽工已帮带干开张当得心快"
OUR_PACKAGES = ("asr", "tools", "tests", "recipes")


class Skip(Exception):
    """A section that cannot run here; ``blocking`` when a package is missing."""

    def __init__(self, reason: str, blocking: bool = False) -> None:
        super().__init__(reason)
        self.blocking = blocking


def require(module: str, extra: str) -> None:
    """Skip (blocking) when ``module`` is not importable."""
    if importlib.util.find_spec(module) is None:
        raise Skip(f"{module} is not installed (pip install 'cs-mage-asr[{extra}]')", blocking=True)


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux): torchrun's workers run in sessions of
    their own, so killing the section's process group would otherwise leave them on the GPU."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL


class Plan:
    """Sizes and precisions of one check (full size on a GPU, or ``--smoke``)."""

    def __init__(self, device: str, smoke: bool, scratch: Path) -> None:
        self.device, self.smoke, self.scratch = device, smoke, scratch
        self.cuda = device == "cuda"
        self.layers = 1 if smoke else None
        self.sizes = (
            {"train": 8, "validation": 4, "test": 4}
            if smoke
            else {"train": 760, "validation": 160, "test": 165}
        )
        self.durations = (1.0, 1.5) if smoke else (2.0, 12.0)  # smoke: short clips, short decodes
        self.small = 2 if smoke else 16  # validation/test clips of the training sections
        self.train_batch = 4 if smoke else 16  # whisper-small: 2 steps per smoke epoch
        self.warmup_steps = 1 if smoke else 3  # excluded from utterances/s
        self.funasr_steps = 2 if smoke else 20
        self.funasr_batch = 2 if smoke else 16
        self.launch_steps = 2 if smoke else 5
        self.llm_steps, self.llm_batch = (2, 2) if smoke else (12, 8)
        self.eval_batch = 4 if smoke else 32
        self.agreement_clips = 2 if smoke else 16
        # the CPU side is slow at whisper-small's 30 s context: the smoke form compares whisper-tiny
        self.agreement_model = "whisper-tiny" if smoke else "whisper-small"
        self.overfit_steps, self.overfit_lr = (4, 1e-3) if smoke else (8, 1e-4)
        self.eval_manifest = "validation_small.jsonl" if smoke else "validation.jsonl"  # 2 or 160 clips
        self.bf16 = "bf16" if self.cuda else "fp32"
        self.fp16 = "fp16" if self.cuda else "fp32"
        self.num_workers = 4 if self.cuda else 0

    @property
    def data(self) -> Path:
        return self.scratch / "data"

    def replica(self, name: str) -> Path:
        """The real-size replica of ``name`` (``layers=1`` in smoke), built once per scratch folder."""
        from tests.model_factory import build

        folder = self.scratch / "replicas" / name
        if not (folder / ".complete").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(name, folder, size="real", layers=self.layers, seed=0)
            (folder / ".complete").write_text("", encoding="utf-8")
        return folder


# --- synthetic corpus -----------------------------------------------------------------------------


def synth_wave(seconds: float, rng: Any) -> Any:
    """Speech-like noise: a voiced tone with harmonics, syllable-rate envelope, background noise."""
    import numpy as np

    t = np.arange(round(seconds * 16000)) / 16000
    f0 = rng.uniform(100, 300)
    tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 5))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 5) * t))
    wave_ = 0.2 * envelope * tone + 0.02 * rng.standard_normal(len(t))
    return (wave_ / max(1.0, float(np.abs(wave_).max()))).astype(np.float32)


def write_wav(path: Path, samples: Any) -> None:
    """16 kHz mono PCM-16 with the standard library (no soundfile needed to write the corpus)."""
    import numpy as np

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


def corpus(plan: Plan) -> dict[str, Any]:
    """WAVs and ``manifests/{split}.jsonl`` (plus ``*_small`` heads); clip counts and hours per split."""
    import numpy as np

    from asr.data.manifest import Utterance, write_manifest
    from asr.text.normalize import normalize

    root = plan.data
    shutil.rmtree(root, ignore_errors=True)
    rng = np.random.default_rng(0)
    low, high = plan.durations
    info: dict[str, Any] = {"status": "ok"}
    for split, n in plan.sizes.items():
        folder = root / "audio" / split
        folder.mkdir(parents=True, exist_ok=True)
        raw = rng.lognormal(mean=math.log(5.0), sigma=0.45, size=n)  # CS-Mage-like: around 5 s
        utts = []
        for i, d in enumerate(raw):
            seconds = round(float(min(high, max(low, d))), 3)
            path = folder / f"{split}_{i:04d}.wav"
            write_wav(path, synth_wave(seconds, rng))
            length = max(2, round(seconds * rng.uniform(2.5, 4.5)))  # characters per second of speech
            text = "".join(rng.choice(list(CHARACTERS), size=length))
            utts.append(Utterance(f"{split}_{i:04d}", str(path), seconds, text, normalize(text), split))
        write_manifest(root / "manifests" / f"{split}.jsonl", utts)
        if split != "train":
            write_manifest(root / "manifests" / f"{split}_small.jsonl", utts[: plan.small])
        info[split] = {"clips": n, "hours": round(sum(u.duration for u in utts) / 3600, 3)}
    return info


# --- measuring ------------------------------------------------------------------------------------


def reset_peak(plan: Plan) -> None:
    import torch

    gc.collect()
    if plan.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(plan: Plan) -> dict[str, float | None]:
    """Peak GPU memory (allocated and reserved, MiB) since :func:`reset_peak`; peak RSS of the process."""
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if not plan.cuda:
        return {"peak_gpu_memory_mib": None, "peak_gpu_reserved_mib": None, "peak_rss_mib": round(rss, 1)}
    return {
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "peak_gpu_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1),
        "peak_rss_mib": round(rss, 1),
    }


def step_clock(cuda: bool) -> Any:
    """A Trainer callback with the end time of every optimizer step (validation not included)."""
    import torch
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self) -> None:
            self.begin: float | None = None
            self.ends: list[float] = []

        def on_step_begin(self, args, state, control, **kwargs):
            if self.begin is None:
                self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.ends.append(time.perf_counter())

    return StepClock()


def steady_rate(begin: float | None, ends: list[float], per_step: float, warmup: int) -> dict[str, Any]:
    """Utterances/s after the first ``warmup`` steps (all of them when there are no more)."""
    if begin is None or not ends:
        return {"utterances_per_second": None, "warmup_seconds": None, "measured_steps": 0}
    warm = min(warmup, len(ends) - 1)
    start = ends[warm - 1] if warm > 0 else begin
    measured = len(ends) - warm
    seconds = ends[-1] - start
    return {
        "utterances_per_second": round(measured * per_step / seconds, 2) if seconds > 0 else None,
        "warmup_seconds": round(start - begin, 2),
        "measured_steps": measured,
        "train_seconds": round(ends[-1] - begin, 2),
    }


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- training and evaluation ----------------------------------------------------------------------


def train(
    plan: Plan, model_dir: Path, config: str, name: str, precision: str, overrides: list[str]
) -> dict[str, Any]:
    """One ``asr finetune`` run: steady-state utterances/s, peak memory, the logged losses."""
    from asr.train.finetune_config import load_finetune_config
    from asr.train.recipe import finetune

    data, out = plan.data, plan.scratch / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_finetune_config(
        REPO / "configs" / config,
        [
            f"model={model_dir}",
            f"data={data}",
            f"validation_manifest={data / 'manifests' / 'validation_small.jsonl'}",
            f"test_manifest={data / 'manifests' / 'test_small.jsonl'}",
            f"output_dir={out}",
            f"device={plan.device}",
            f"precision={precision}",
            "eval_steps=100000",  # validated once, at the last step
            "save_steps=null",
            "eval_limit=16",
            "save_total_limit=1",
            "patience=null",
            "zero_shot=false",
            "bootstrap=0",
            "report_to=[]",
            "logging_steps=1",
            *overrides,
        ],
    )
    reset_peak(plan)
    clock = step_clock(plan.cuda)
    start = time.perf_counter()
    summary = finetune(cfg, callbacks=[clock])
    result: dict[str, Any] = {"status": "ok", "wall_seconds": round(time.perf_counter() - start, 1)}
    result.update(peak_memory(plan))
    if summary is None:  # not the main process (torchrun children other than rank 0)
        return result
    losses = [r["loss"] for r in read_jsonl(out / "train_log.jsonl") if "loss" in r]
    result.update(
        steady_rate(clock.begin, clock.ends, summary.effective_batch_size, plan.warmup_steps),
        steps=summary.global_step,
        batch_size=summary.effective_batch_size,
        precision=summary.precision,
        world_size=summary.world_size,
        trainable_parameters=summary.trainable_parameters,
        total_parameters=summary.total_parameters,
        losses=losses,
        validation_cer=summary.best_validation_cer,
        nonfinite_steps=summary.nonfinite_steps,
    )
    if not plan.cuda and precision != "fp32":
        result["note"] = f"{precision} needs CUDA: fp32 on the CPU"
    return result


def evaluate_replica(
    plan: Plan, model_dir: Path, name: str, dtype: str, backend: str, manifest: str
) -> dict[str, Any]:
    """``asr.inference.evaluate`` after a one-batch warm-up: utterances/s, RTF, peak memory."""
    from asr.data.manifest import read_manifest
    from asr.inference import EvalSettings, evaluate
    from asr.models import load_model

    utts = read_manifest(plan.data / "manifests" / manifest)
    out = plan.scratch / "eval" / name
    start = time.perf_counter()
    model = load_model(model_dir, device=plan.device, dtype=dtype)
    if backend == "ct2":
        model.set_backend("ct2", compute_type="float16" if plan.cuda else "int8")
    load_seconds = time.perf_counter() - start
    settings = EvalSettings(batch_size=plan.eval_batch, n_bootstrap=0, progress=False)
    evaluate(model, utts[: plan.eval_batch], out / "warmup", settings)
    reset_peak(plan)
    start = time.perf_counter()
    result = evaluate(model, utts, out / "timed", settings)
    seconds = time.perf_counter() - start
    audio = sum(u.duration or 0.0 for u in utts)
    return {
        "status": "ok",
        "backend": backend,
        "dtype": dtype if backend == "torch" else ("float16" if plan.cuda else "int8"),
        "batch_size": plan.eval_batch,
        "utterances": len(utts),
        "audio_seconds": round(audio, 1),
        "load_seconds": round(load_seconds, 2),
        "decode_seconds": round(seconds, 2),
        "utterances_per_second": round(len(utts) / seconds, 2),
        "rtf": round(seconds / audio, 4) if audio else None,
        "cer": result.record.metrics.cer,
        **peak_memory(plan),
    }


def load_clips(plan: Plan, n: int) -> tuple[list[Any], list[str]]:
    from asr.data.audio import load_audio
    from asr.data.manifest import read_manifest

    utts = read_manifest(plan.data / "manifests" / "train.jsonl")[:n]
    return [load_audio(u.audio) for u in utts], [u.text for u in utts]


# --- sections -------------------------------------------------------------------------------------


def environment(plan: Plan) -> dict[str, Any]:
    """What torch sees: versions, the GPU, bf16; on ``--device cuda`` CUDA must be usable."""
    import torch

    from asr.train.preflight import cuda_unusable_reason, nvidia_driver

    result: dict[str, Any] = {
        "status": "ok",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "driver": nvidia_driver(),
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": torch.cuda.is_available(),
        "device_count": torch.cuda.device_count(),
    }
    problem = cuda_unusable_reason()
    if problem:
        result["cuda_problem"] = problem
    if torch.cuda.is_available():
        from asr.models import bf16_supported

        props = torch.cuda.get_device_properties(0)
        result.update(
            gpu=props.name,
            gpu_memory_mib=round(props.total_memory / 2**20),
            compute_capability=f"{props.major}.{props.minor}",
            bf16=bf16_supported(),
        )
    elif plan.cuda:
        return {**result, "status": "failed", "error": problem or "no CUDA GPU is visible to torch"}
    return result


def whisper_small(plan: Plan, method: str, precision: str) -> dict[str, Any]:
    if precision == "fp32" and method == "lora" and not plan.cuda:
        raise Skip("on the CPU the bf16 section already ran in fp32")
    suffix = f"_{precision}" if method == "lora" else ""
    return train(
        plan, plan.replica("whisper-small"), f"whisper-small-{method}.yaml", f"whisper_small_{method}{suffix}",
        precision if plan.cuda else "fp32",
        ["num_epochs=1", "max_steps=null", f"batch_size={plan.train_batch}", f"num_workers={plan.num_workers}"],
    )  # fmt: skip


def gpu_vs_cpu(plan: Plan) -> dict[str, Any]:
    """Same clips, same weights: fp32 greedy transcripts identical on the device and the CPU; the
    device's bf16 (autocast) loss within 2% of the CPU's fp32 loss; the loss falling (:func:`overfit`)."""
    import torch

    from asr.models import load_model
    from asr.models.spec import DecodeOptions

    torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32 for the comparison
    torch.backends.cudnn.allow_tf32 = False
    waves, texts = load_clips(plan, plan.agreement_clips)
    folder = plan.replica(plan.agreement_model)
    options = DecodeOptions(beam_size=1)
    losses: dict[str, float] = {}
    transcripts: dict[str, list[str]] = {}
    for where in ("cpu", plan.device) if plan.cuda else ("cpu", "cpu-again"):
        device = "cpu" if where.startswith("cpu") else where
        model = load_model(folder, device=device, dtype="fp32")
        model.module.eval()
        with torch.no_grad():
            transcripts[where] = model.transcribe(waves, options)
            batch = model.collate(waves, texts)
            losses[where] = float(model.loss(batch))
            if where != "cpu":
                with torch.autocast(device_type=device, dtype=torch.bfloat16):
                    losses["bf16"] = float(model.loss(batch))
        if where != "cpu":
            falling = overfit(plan, model, model.collate(waves, texts))
        del model
        gc.collect()
    other = plan.device if plan.cuda else "cpu-again"
    same = sum(a == b for a, b in zip(transcripts["cpu"], transcripts[other], strict=True))
    drift = abs(losses["bf16"] - losses["cpu"]) / abs(losses["cpu"])
    fp32_drift = abs(losses[other] - losses["cpu"]) / abs(losses["cpu"])
    falls = all(math.isfinite(x) for x in falling) and falling[-1] < falling[0] * 2 / 3
    agree = same == len(waves) and drift < 0.02 and fp32_drift < 1e-3
    result: dict[str, Any] = {
        "status": "ok" if agree and falls else "failed",
        "model": plan.agreement_model,
        "clips": len(waves),
        "identical_transcripts": same,
        "loss_cpu_fp32": round(losses["cpu"], 5),
        "loss_device_fp32": round(losses[other], 5),
        "loss_device_bf16": round(losses["bf16"], 5),
        "bf16_relative_difference": round(drift, 5),
        "losses_over_steps": falling,
        "loss_falls": falls,
    }
    if not plan.cuda:
        result["note"] = "no GPU: two CPU loads compared, bf16 autocast on the CPU"
    if not agree:
        result["error"] = (
            f"{same}/{len(waves)} identical greedy transcripts; loss fp32 {losses[other]:.5f} vs CPU "
            f"{losses['cpu']:.5f}, bf16 {losses['bf16']:.5f} ({drift:.2%}, tolerance 2%)"
        )
    elif not falls:
        result["error"] = f"the loss did not fall by a third over {len(falling)} steps: {falling}"
    return result


def overfit(plan: Plan, model: Any, batch: dict[str, Any]) -> list[float]:
    """The losses of full fine-tuning on one fixed batch (bf16 autocast on a GPU)."""
    import torch

    model.set_trainable("full")
    model.module.train()
    optimizer = torch.optim.AdamW(
        [p for p in model.module.parameters() if p.requires_grad], lr=plan.overfit_lr
    )
    losses = []
    for _ in range(plan.overfit_steps):
        with torch.autocast(device_type=plan.device, dtype=torch.bfloat16, enabled=plan.cuda):
            loss = model.loss(batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 4))
    return losses


def turbo(plan: Plan, backend: str) -> dict[str, Any]:
    if backend == "ct2":
        require("ctranslate2", "ct2")
        if not plan.cuda:
            raise Skip("CTranslate2 float16 needs CUDA (the CPU form, int8, is covered by tests/e2e)")
        missing = preload_cuda12()
        if missing:
            raise Skip(missing, blocking=True)
    manifest = plan.eval_manifest if backend == "ct2" else "validation.jsonl"
    result = evaluate_replica(
        plan, plan.replica("whisper-large-v3-turbo"), f"turbo_{backend}", plan.fp16, backend, manifest
    )
    if not plan.cuda:
        result["note"] = "fp16 needs CUDA: fp32 on the CPU"
    return result


def preload_cuda12() -> str | None:
    """CTranslate2's CUDA 12 libraries, loaded globally before any conversion; else why not.

    The host's torch may be a CUDA 13 build; the ``nvidia-cublas-cu12`` / ``nvidia-cudnn-cu12``
    wheels bring the CUDA 12 ones, which are not on the loader's path by themselves.
    """
    import glob

    wanted = ("libcublasLt.so.12", "libcublas.so.12", "libcudnn.so.9")  # in loading order
    roots = [os.path.join(p, "nvidia") for p in sys.path if os.path.isdir(os.path.join(p, "nvidia"))]
    missing = []
    for lib in wanted:
        candidates = [lib, *(f for r in roots for f in glob.glob(os.path.join(r, "*", "lib", lib)))]
        for candidate in candidates:
            try:
                ctypes.CDLL(candidate, mode=ctypes.RTLD_GLOBAL)
                break
            except OSError:
                continue
        else:
            missing.append(lib)
    if missing:
        return (
            f"CTranslate2 is a CUDA 12 build and {', '.join(missing)} cannot be loaded "
            "(pip install nvidia-cublas-cu12 nvidia-cudnn-cu12, or the wheelhouse's ct2 set)"
        )
    return None


def funasr_train(plan: Plan, name: str) -> dict[str, Any]:
    require("funasr", "funasr")
    return train(
        plan, plan.replica(name), f"{name}-full.yaml", name.replace("-", "_") + "_train", plan.bf16,
        [f"max_steps={plan.funasr_steps}", f"batch_size={plan.funasr_batch}",
         f"num_workers={plan.num_workers}", "warmup_ratio=0"],
    )  # fmt: skip


def qwen3_asr_lora(plan: Plan) -> dict[str, Any]:
    """The audio-LLM family: Qwen3-ASR 0.6B (replica) with LoRA on the LLM, bf16 on a GPU."""
    return train(
        plan, plan.replica("qwen3-asr-0.6b"), "qwen3-asr-0.6b-lora.yaml", "qwen3_asr_lora", plan.bf16,
        [f"max_steps={plan.llm_steps}", f"batch_size={plan.llm_batch}", "grad_accum=1",
         f"num_workers={plan.num_workers}", "warmup_ratio=0", f"eval_batch_size={plan.eval_batch}"],
    )  # fmt: skip


def launch_overrides(plan: Plan) -> list[str]:
    return [
        f"max_steps={plan.launch_steps}",
        f"batch_size={plan.train_batch}",
        f"num_workers={plan.num_workers}",
        "warmup_ratio=0",
    ]


def launched(plan: Plan, name: str, args: argparse.Namespace) -> dict[str, Any]:
    """``torchrun --nproc_per_node 1 -m tools.gpu_sections --child NAME``: a training run in that launch."""
    if name == "deepspeed_zero2":
        if not plan.cuda:
            raise Skip("DeepSpeed ZeRO-2 needs CUDA")
        require("deepspeed", "deepspeed")
    plan.replica("whisper-small")
    result_path = plan.scratch / f"child-{name}.json"
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
        "-m", "tools.gpu_sections", name, "--child", "--scratch", str(plan.scratch),
        "--result", str(result_path), "--device", plan.device, *(["--smoke"] if plan.smoke else []),
    ]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if not plan.cuda:
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    # no timeout here: the check kills this section's process group, and the worker dies with torchrun
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or not result_path.is_file():
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {"status": "failed", "error": f"exit status {proc.returncode}: {tail}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result["launch_wall_seconds"] = round(time.perf_counter() - start, 1)
    result["command"] = " ".join(command[1:])
    return result


def child(plan: Plan, name: str, result_path: Path) -> None:
    """Inside torchrun: the whisper-small run of section ``name``; rank 0 writes the result."""
    die_with_parent()
    overrides = launch_overrides(plan)
    if name == "deepspeed_zero2":
        overrides.append(f"deepspeed={REPO / 'configs' / 'deepspeed' / 'zero2.json'}")
    result = train(plan, plan.replica("whisper-small"), "whisper-small-lora.yaml", name, plan.bf16, overrides)
    if int(os.environ.get("RANK", "0")) == 0:
        result_path.write_text(json.dumps(result), encoding="utf-8")


def sections(args: argparse.Namespace) -> dict[str, Callable[[Plan], dict[str, Any]]]:
    return {
        "environment": environment,
        "corpus": corpus,
        "whisper_small_lora_bf16": lambda p: whisper_small(p, "lora", "bf16"),
        "whisper_small_lora_fp32": lambda p: whisper_small(p, "lora", "fp32"),
        "whisper_small_full": lambda p: whisper_small(p, "full", "bf16"),
        "gpu_vs_cpu": gpu_vs_cpu,
        "turbo_eval_torch": lambda p: turbo(p, "torch"),
        "turbo_eval_ct2": lambda p: turbo(p, "ct2"),
        "paraformer_large_train": lambda p: funasr_train(p, "paraformer-large"),
        "sensevoice_small_train": lambda p: funasr_train(p, "sensevoice-small"),
        "qwen3_asr_lora": qwen3_asr_lora,
        "torchrun_nproc1": lambda p: launched(p, "torchrun_nproc1", args),
        "deepspeed_zero2": lambda p: launched(p, "deepspeed_zero2", args),
    }


def hang(plan: Plan) -> None:
    """``GPU_CHECK_HANG=NAME``: section NAME hangs, with a grandchild (the timeout tests)."""
    sleeper = subprocess.Popen(["sleep", "600"])
    (plan.scratch / "hang.pid").write_text(str(sleeper.pid), encoding="utf-8")
    time.sleep(600)


def run_one(name: str, plan: Plan, args: argparse.Namespace) -> dict[str, Any]:
    """The section's result; a missing package is a blocking skip naming it, an error a failure."""
    try:
        if os.environ.get("GPU_CHECK_HANG") == name:
            hang(plan)
        if not plan.cuda:
            import torch

            torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
        return sections(args)[name](plan)
    except Skip as skip:
        return {"status": "skipped", "reason": str(skip), "blocking": skip.blocking}
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] not in OUR_PACKAGES:
            return {
                "status": "skipped",
                "reason": f"missing package: {err.name} ({err})",
                "blocking": True,
                "missing": err.name,
                "traceback": traceback.format_exc(),
            }
        return {
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }
    except Exception as err:
        return {
            "status": "failed",
            "error": f"{type(err).__name__}: {err}",
            "traceback": traceback.format_exc(),
        }


def main(argv: list[str] | None = None) -> int:
    from tools.gpu_check import SECTIONS

    parser = argparse.ArgumentParser(prog="python -m tools.gpu_sections")
    parser.add_argument("name", choices=tuple(SECTIONS))
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    plan = Plan(args.device, args.smoke, args.scratch)
    if args.child:
        child(plan, args.name, args.result)
        return 0
    result = run_one(args.name, plan, args)
    args.result.write_text(json.dumps(result, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
