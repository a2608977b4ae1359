"""``make gpu-check``: the GPU paths of fine-tuning and evaluation in one short run, no downloads.

    python -m tools.gpu_check --out runs/gpu-check               # one GPU, under 8 minutes
    python -m tools.gpu_check --device cpu --smoke --out DIR     # the same sections, tiny (CI)

Models are replicas of the published checkpoints (real dimensions, random weights:
``tests.model_factory.build(name, size="real")``); the audio is synthetic (tones and noise, CS-Mage-like
durations of 2-12 s: 760 training, 160 validation and 165 test clips). Sections:

- ``whisper_small_lora`` / ``whisper_small_full``: one epoch over the 760 clips in bf16:
  utterances/s and peak GPU memory;
- ``turbo_eval_torch``: whisper-large-v3-turbo evaluation in fp16 with torch, batch 32;
- ``turbo_eval_ct2``: the same with CTranslate2 float16;
- ``paraformer_large_train`` / ``sensevoice_small_train``: 20 training steps;
- ``torchrun_nproc1`` / ``deepspeed_zero2``: 5 steps of whisper-small under ``torchrun
  --nproc_per_node 1``, without and with DeepSpeed ZeRO-2 (``configs/deepspeed/zero2.json``).

Every section reports numbers, or ``status: skipped`` with the reason, or ``status: failed``
with the error (the others still run; the exit status is 1 then). Writes ``OUT/gpu_check.json``
and prints a table. ``--smoke`` shrinks everything (1-layer replicas, 8 clips, 2 steps) and, on
the CPU, runs what has a CPU form (fp32 instead of fp16/bf16, torchrun with gloo) and skips
the rest (CTranslate2 float16, DeepSpeed) with the reason.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JSON_NAME = "gpu_check.json"
SECTIONS = (
    "whisper_small_lora",
    "whisper_small_full",
    "turbo_eval_torch",
    "turbo_eval_ct2",
    "paraformer_large_train",
    "sensevoice_small_train",
    "torchrun_nproc1",
    "deepspeed_zero2",
)
# Characters of the synthetic transcripts: common Changsha-dialect ones that every replica's
# vocabulary holds (the placeholder character vocabularies start at U+4E00).
CHARACTERS = "一七三上下不中么了事人今他们以会你做倒儿先光全公冇出到前即去又口只可吃各合吧呀呢咯咧哒哪唔喊嗯在坐块声大天太女好如妈子孩它宝家对小就屋崽工已帮带干开张当得心快"


# --- synthetic corpus -----------------------------------------------------------------------------


def clip_durations(n: int, rng: np.random.Generator, low: float, high: float) -> list[float]:
    """CS-Mage-like clip lengths: log-normal around 5 s, kept within ``[low, high]`` seconds."""
    raw = rng.lognormal(mean=math.log(5.0), sigma=0.45, size=n)
    return [round(float(min(high, max(low, d))), 3) for d in raw]


def synth_wave(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech-like noise: a voiced tone with harmonics, syllable-rate envelope, background noise."""
    t = np.arange(round(seconds * 16000)) / 16000
    f0 = rng.uniform(100, 300)
    tone = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 5))
    envelope = 0.5 * (1 + np.sin(2 * np.pi * rng.uniform(3, 5) * t))
    wave = 0.2 * envelope * tone + 0.02 * rng.standard_normal(len(t))
    return (wave / max(1.0, float(np.abs(wave).max()))).astype(np.float32)


def write_corpus(root: Path, sizes: dict[str, int], low: float, high: float, seed: int = 0) -> dict[str, Any]:
    """WAVs and ``manifests/{split}.jsonl``; returns clip counts and hours per split."""
    import soundfile as sf

    from asr.data.manifest import Utterance, write_manifest
    from asr.text.normalize import normalize

    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {}
    for split, n in sizes.items():
        folder = root / "audio" / split
        folder.mkdir(parents=True, exist_ok=True)
        utts = []
        for i, seconds in enumerate(clip_durations(n, rng, low, high)):
            path = folder / f"{split}_{i:04d}.wav"
            sf.write(path, synth_wave(seconds, rng), 16000, subtype="PCM_16")
            length = max(2, round(seconds * rng.uniform(2.5, 4.5)))  # characters per second of speech
            text = "".join(rng.choice(list(CHARACTERS), size=length))
            utts.append(Utterance(f"{split}_{i:04d}", str(path), seconds, text, normalize(text), split))
        write_manifest(root / "manifests" / f"{split}.jsonl", utts)
        info[split] = {"clips": n, "hours": round(sum(u.duration for u in utts) / 3600, 3)}
    return info


# --- measuring ------------------------------------------------------------------------------------


def _cuda(device: str) -> bool:
    return device == "cuda"


def reset_peak(device: str) -> None:
    import torch

    gc.collect()
    if _cuda(device):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory(device: str) -> dict[str, float | None]:
    """Peak GPU memory (allocated and reserved, MiB) since :func:`reset_peak`; peak RSS of the process."""
    import torch

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    if not _cuda(device):
        return {"peak_gpu_memory_mib": None, "peak_gpu_reserved_mib": None, "peak_rss_mib": round(rss, 1)}
    return {
        "peak_gpu_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "peak_gpu_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1),
        "peak_rss_mib": round(rss, 1),
    }


def _step_clock():
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        """Training time only: from the first step's start to the last step's end (no validation)."""

        def __init__(self) -> None:
            self.begin: float | None = None
            self.end = 0.0
            self.steps = 0

        def on_step_begin(self, args, state, control, **kwargs):
            if self.begin is None:
                self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.end = time.perf_counter()
            self.steps = state.global_step

        @property
        def seconds(self) -> float:
            return self.end - (self.begin or self.end)

    return StepClock()


# --- sections -------------------------------------------------------------------------------------


def train_section(
    model_dir: Path, config: str, work: Path, name: str, device: str, precision: str, overrides: list[str]
) -> dict[str, Any]:
    """One ``asr finetune`` run; training utterances/s (validation and test decodes excluded), memory."""
    from asr.train.finetune_config import load_finetune_config
    from asr.train.recipe import finetune

    data = work / "data"
    out = work / "runs" / name
    shutil.rmtree(out, ignore_errors=True)
    cfg = load_finetune_config(
        REPO / "configs" / config,
        [
            f"model={model_dir}",
            f"data={data}",
            f"validation_manifest={data / 'manifests' / 'validation_small.jsonl'}",
            f"test_manifest={data / 'manifests' / 'test_small.jsonl'}",
            f"output_dir={out}",
            f"device={device}",
            f"precision={precision}",
            "eval_steps=100000",  # validated once, at the last step
            "save_steps=null",
            "eval_limit=16",
            "save_total_limit=1",
            "patience=null",
            "zero_shot=false",
            "bootstrap=0",
            "report_to=[]",
            "logging_steps=5",
            *overrides,
        ],
    )
    reset_peak(device)
    clock = _step_clock()
    start = time.perf_counter()
    summary = finetune(cfg, callbacks=[clock])
    wall = time.perf_counter() - start
    result: dict[str, Any] = {"status": "ok", "wall_seconds": round(wall, 1), **peak_memory(device)}
    if summary is None:  # not the main process (torchrun children other than rank 0)
        return result
    per_step = summary.effective_batch_size
    utterances = min(summary.global_step * per_step, summary.train_utterances * math.ceil(cfg.num_epochs))
    if cfg.max_steps is None:  # whole epochs: every clip once per epoch
        utterances = round(summary.train_utterances * cfg.num_epochs)
    losses = [r["loss"] for r in _read_jsonl(out / "train_log.jsonl") if "loss" in r]
    result.update(
        steps=summary.global_step,
        batch_size=per_step,
        precision=summary.precision,
        world_size=summary.world_size,
        train_seconds=round(clock.seconds, 2),
        utterances_per_second=round(utterances / clock.seconds, 2) if clock.seconds > 0 else None,
        trainable_parameters=summary.trainable_parameters,
        total_parameters=summary.total_parameters,
        first_loss=losses[0] if losses else None,
        last_loss=losses[-1] if losses else None,
        validation_cer=summary.best_validation_cer,
        nonfinite_steps=summary.nonfinite_steps,
    )
    return result


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def eval_section(
    model_dir: Path,
    work: Path,
    name: str,
    device: str,
    dtype: str,
    batch_size: int,
    backend: str,
    manifest: str = "validation.jsonl",
) -> dict[str, Any]:
    """``asr.inference.evaluate`` of a replica on the evaluation clips: utterances/s, RTF, memory."""
    from asr.data.manifest import read_manifest
    from asr.inference import EvalSettings, evaluate
    from asr.models import load_model

    utts = read_manifest(work / "data" / "manifests" / manifest)
    out = work / "eval" / name
    shutil.rmtree(out, ignore_errors=True)
    reset_peak(device)
    start = time.perf_counter()
    model = load_model(model_dir, device=device, dtype=dtype)
    if backend == "ct2":
        model.set_backend("ct2", compute_type="float16" if _cuda(device) else "int8")
    load_seconds = time.perf_counter() - start
    start = time.perf_counter()
    result = evaluate(model, utts, out, EvalSettings(batch_size=batch_size, n_bootstrap=0, progress=False))
    seconds = time.perf_counter() - start
    audio = sum(u.duration or 0.0 for u in utts)
    record = result.record
    del model
    return {
        "status": "ok",
        "backend": backend,
        "dtype": dtype if backend == "torch" else ("float16" if _cuda(device) else "int8"),
        "batch_size": batch_size,
        "utterances": len(utts),
        "audio_seconds": round(audio, 1),
        "load_seconds": round(load_seconds, 2),
        "decode_seconds": round(seconds, 2),
        "utterances_per_second": round(len(utts) / seconds, 2),
        "rtf": round(seconds / audio, 4) if audio else None,
        "cer": record.metrics.cer,
        **peak_memory(device),
    }


def torchrun_section(
    name: str, work: Path, args: argparse.Namespace, extra: list[str], timeout: float
) -> dict[str, Any]:
    """``torchrun --nproc_per_node 1 -m tools.gpu_check --child NAME``: a training run in that launch."""
    result_path = work / f"child-{name}.json"
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1",
        "-m", "tools.gpu_check", "--child", name, "--work", str(work), "--device", args.device,
        *(["--smoke"] if args.smoke else []), "--out", str(args.out),
    ]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if not _cuda(args.device):
        env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not result_path.is_file():
        tail = (proc.stderr or proc.stdout)[-3000:]
        return {"status": "failed", "error": f"exit status {proc.returncode}: {tail}"}
    result = json.loads(result_path.read_text(encoding="utf-8"))
    result["launch_wall_seconds"] = round(wall, 1)
    result["command"] = " ".join(command[1:])
    return result


class Plan:
    """Sizes and precisions of one check (full size on a GPU, or ``--smoke``)."""

    def __init__(self, args: argparse.Namespace):
        import torch

        smoke, cuda = args.smoke, _cuda(args.device)
        self.layers = 1 if smoke else None
        self.sizes = (
            {"train": 8, "validation": 4, "test": 4}
            if smoke
            else {"train": 760, "validation": 160, "test": 165}
        )
        self.durations = (1.0, 1.5) if smoke else (2.0, 12.0)  # smoke: short clips, short decodes
        self.small = 2 if smoke else 16  # validation/test clips of the training sections
        self.train_batch = 4 if smoke else 16  # whisper-small: 2 steps per smoke epoch
        self.funasr_steps = 2 if smoke else 20
        self.funasr_batch = 2 if smoke else 16
        self.launch_steps = 2 if smoke else 5
        self.eval_batch = 4 if smoke else 32
        self.eval_manifest = "validation_small.jsonl" if smoke else "validation.jsonl"  # 2 or 160 clips
        self.bf16 = "bf16" if cuda else "fp32"
        self.fp16 = "fp16" if cuda else "fp32"
        self.num_workers = 4 if cuda else 0
        self.gpu = torch.cuda.get_device_name(0) if cuda else None


def _child(args: argparse.Namespace) -> int:
    """Inside torchrun: the 5-step whisper-small run of section ``args.child``; rank 0 writes the result."""
    plan = Plan(args)
    work = Path(args.work)
    overrides = _launch_overrides(plan, args.device)
    if args.child == "deepspeed_zero2":
        overrides.append(f"deepspeed={REPO / 'configs' / 'deepspeed' / 'zero2.json'}")
    result = train_section(
        work / "replicas" / "whisper-small", "whisper-small-lora.yaml", work, args.child, args.device,
        plan.bf16, overrides,
    )  # fmt: skip
    if int(os.environ.get("RANK", "0")) == 0:
        (work / f"child-{args.child}.json").write_text(json.dumps(result), encoding="utf-8")
    return 0


def _launch_overrides(plan: Plan, device: str) -> list[str]:
    return [
        f"max_steps={plan.launch_steps}",
        f"batch_size={plan.train_batch}",
        f"num_workers={plan.num_workers}",
        "warmup_ratio=0",
    ]


def _skip(reason: str) -> dict[str, Any]:
    return {"status": "skipped", "reason": reason}


def _funasr_missing() -> str | None:
    import importlib.util

    if importlib.util.find_spec("funasr") is None:
        return "funasr is not installed (pip install 'cs-mage-asr[funasr]')"
    return None


def plan_sections(
    args: argparse.Namespace, plan: Plan, work: Path
) -> dict[str, Callable[[], dict[str, Any]]]:
    """Each section as a call returning its result (or a skip)."""
    import importlib.util

    device, cuda = args.device, _cuda(args.device)
    replicas = work / "replicas"

    def replica(name: str) -> Path:
        from tests.model_factory import build

        folder = replicas / name
        if not (folder / ".complete").is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(name, folder, size="real", layers=plan.layers, seed=0)
            (folder / ".complete").write_text("", encoding="utf-8")
        return folder

    epoch = [
        "num_epochs=1",
        "max_steps=null",
        f"batch_size={plan.train_batch}",
        f"num_workers={plan.num_workers}",
    ]

    def whisper_small(method: str) -> dict[str, Any]:
        return train_section(
            replica("whisper-small"), f"whisper-small-{method}.yaml", work, f"whisper_small_{method}",
            device, plan.bf16, epoch,
        )  # fmt: skip

    def funasr(name: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            missing = _funasr_missing()
            if missing:
                return _skip(missing)
            return train_section(
                replica(name), f"{name}-full.yaml", work, name.replace("-", "_") + "_train", device, plan.bf16,
                [f"max_steps={plan.funasr_steps}", f"batch_size={plan.funasr_batch}",
                 f"num_workers={plan.num_workers}", "warmup_ratio=0"],
            )  # fmt: skip

        return run

    def turbo_torch() -> dict[str, Any]:
        result = eval_section(
            replica("whisper-large-v3-turbo"),
            work,
            "turbo_torch",
            device,
            plan.fp16,
            plan.eval_batch,
            "torch",
        )
        if not cuda:
            result["note"] = "fp16 needs CUDA: fp32 on the CPU"
        return result

    def turbo_ct2() -> dict[str, Any]:
        if importlib.util.find_spec("ctranslate2") is None:
            return _skip("ctranslate2 is not installed (pip install 'cs-mage-asr[ct2]')")
        if not cuda:
            return _skip("CTranslate2 float16 needs CUDA (the CPU form, int8, is covered by tests/e2e)")
        return eval_section(
            replica("whisper-large-v3-turbo"),
            work,
            "turbo_ct2",
            device,
            plan.fp16,
            plan.eval_batch,
            "ct2",
            plan.eval_manifest,
        )

    def launched(name: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            if name == "deepspeed_zero2":
                if not cuda:
                    return _skip("DeepSpeed ZeRO-2 needs CUDA")
                if importlib.util.find_spec("deepspeed") is None:
                    return _skip("deepspeed is not installed (pip install 'cs-mage-asr[deepspeed]')")
            replica("whisper-small")
            return torchrun_section(name, work, args, [], timeout=300 if cuda else 240)

        return run

    return {
        "whisper_small_lora": lambda: whisper_small("lora"),
        "whisper_small_full": lambda: whisper_small("full"),
        "turbo_eval_torch": turbo_torch,
        "turbo_eval_ct2": turbo_ct2,
        "paraformer_large_train": funasr("paraformer-large"),
        "sensevoice_small_train": funasr("sensevoice-small"),
        "torchrun_nproc1": launched("torchrun_nproc1"),
        "deepspeed_zero2": launched("deepspeed_zero2"),
    }


# --- report ---------------------------------------------------------------------------------------


def table(report: dict[str, Any]) -> str:
    """One row per section: status, throughput, peak memory, seconds (or the reason/error)."""
    rows = [("section", "status", "utt/s", "peak GPU MiB", "peak RSS MiB", "seconds", "note")]
    for name in SECTIONS:
        r = report["sections"].get(name, {})
        status = r.get("status", "?")
        note = r.get("reason") or (r.get("error", "").splitlines() or [""])[-1][:80] or r.get("note", "")
        seconds = r.get("train_seconds", r.get("decode_seconds", r.get("wall_seconds")))
        rows.append(
            (
                name,
                status,
                _fmt(r.get("utterances_per_second")),
                _fmt(r.get("peak_gpu_memory_mib")),
                _fmt(r.get("peak_rss_mib")),
                _fmt(seconds),
                note,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.1f}" if isinstance(value, float) else str(value)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help=f"folder for {JSON_NAME}")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes (1-layer replicas, 8 clips, 2 steps): a CI check"
    )
    parser.add_argument(
        "--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS), help="run only these"
    )
    parser.add_argument("--work", type=Path, default=None, help="replicas, clips and runs (default OUT/work)")
    parser.add_argument("--keep", action="store_true", help="keep OUT/work (replicas, clips, runs)")
    parser.add_argument("--child", choices=("torchrun_nproc1", "deepspeed_zero2"), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA GPU is visible; use --device cpu --smoke for the CPU form", file=sys.stderr)
        return 2
    if args.child:
        return _child(args)
    if not _cuda(args.device):
        torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    out = Path(args.out)
    work = Path(args.work) if args.work else out / "work"
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    plan = Plan(args)
    report: dict[str, Any] = {
        "schema": "gpu_check",
        "device": args.device,
        "gpu": plan.gpu,
        "smoke": bool(args.smoke),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "platform": platform.platform(),
        "sections": {},
    }
    shutil.rmtree(work / "data", ignore_errors=True)
    report["data"] = write_corpus(work / "data", plan.sizes, *plan.durations)
    from asr.data.manifest import read_manifest, write_manifest

    for split in ("validation", "test"):
        utts = read_manifest(work / "data" / "manifests" / f"{split}.jsonl")
        write_manifest(work / "data" / "manifests" / f"{split}_small.jsonl", utts[: plan.small])
    sections = plan_sections(args, plan, work)
    failed = False
    for name in SECTIONS:
        if name not in args.sections:
            report["sections"][name] = _skip("not selected (--sections)")
            continue
        print(f"gpu-check: {name} ...", flush=True)
        start = time.perf_counter()
        try:
            result = sections[name]()
        except Exception as err:
            result = {
                "status": "failed",
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(),
            }
        result.setdefault("section_seconds", round(time.perf_counter() - start, 1))
        failed |= result["status"] == "failed"
        report["sections"][name] = result
        gc.collect()
        if _cuda(args.device):
            torch.cuda.empty_cache()
        _write(out / JSON_NAME, report)  # after every section: a kill keeps what ran
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    _write(out / JSON_NAME, report)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    print(table(report))
    print(f"gpu-check: {out / JSON_NAME} ({report['wall_seconds']:.0f} s)")
    return 1 if failed else 0


def _write(path: Path, report: dict[str, Any]) -> None:
    from asr.io import write_json

    write_json(path, report)


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
