"""Why LoRA seemed to need more memory than full fine-tuning, and what fixes it.

    python -m benchmarks.lora_memory [--model DIR] [--batch-size 8] [--seconds 5]

Part 1, peak RSS: two AdamW steps of full fine-tuning and of LoRA, each in its own child
process, with glibc's default allocator settings and with the fixed mmap/trim thresholds that
every ``asr`` command now sets (:mod:`asr.memory`). Part 2 counts, exactly, the bytes of the tensors autograd saves for backward during one training
forward (each storage once), plus the trainable parameters' own state (weights, gradients
and two AdamW moments: 4 copies in fp32), for full fine-tuning and for LoRA with and without
adapter dropout, at 30 s and at the ``auto`` audio context. peft applies the dropout to each
adapted projection's input, so every adapted Linear keeps its own dropped-out copy of a
(batch, 1500, d_model) activation (and the mask), where full fine-tuning keeps the one input
the projections share. Saves ``runs/benchmarks/lora-memory.json`` and rewrites the
``lora-memory`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from asr.models import load_model
from asr.models.base import ASRModel
from benchmarks.markdown import add_common_arguments, check_writable, publish

TITLE = "Training memory: full fine-tuning vs LoRA"

SETUPS = (  # (label, method, lora dropout, audio context)
    ("full fine-tuning, 30 s", "full", 0.0, "full"),
    ("LoRA r=32, dropout 0.05, 30 s", "lora", 0.05, "full"),
    ("LoRA r=32, dropout 0, 30 s", "lora", 0.0, "full"),
    ("full fine-tuning, auto context", "full", 0.0, "auto"),
    ("LoRA r=32, dropout 0, auto context", "lora", 0.0, "auto"),
)


def saved_activation_bytes(asr_model: ASRModel, batch: dict) -> int:
    """Bytes autograd keeps for backward in one training forward of ``batch`` (each storage once)."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    asr_model.module.train()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        asr_model.loss(batch)
    return sum(storages.values())


def trainable_state_bytes(asr_model: ASRModel) -> int:
    """Weights + gradients + two AdamW moments of the trainable parameters (fp32)."""
    return 4 * sum(p.numel() * p.element_size() for p in asr_model.module.parameters() if p.requires_grad)


def setup_model(model: str, method: str, dropout: float, context: str) -> ASRModel:
    asr_model = load_model(model, device="cpu", dtype="fp32")
    lora = {"r": 32, "alpha": 64, "dropout": dropout, "scope": "all"} if method == "lora" else None
    asr_model.set_trainable(method, lora)
    asr_model.set_audio_context(context)
    return asr_model


def noise_batch(asr_model: ASRModel, batch_size: int, seconds: float) -> dict:
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(int(16000 * seconds))).astype(np.float32) for _ in range(batch_size)]
    return asr_model.collate(waves, ["长沙话"] * batch_size)


def measure(
    model: str, method: str, dropout: float, context: str, batch_size: int, seconds: float
) -> tuple[int, int]:
    asr_model = setup_model(model, method, dropout, context)
    batch = noise_batch(asr_model, batch_size, seconds)
    torch.manual_seed(0)
    return saved_activation_bytes(asr_model, batch), trainable_state_bytes(asr_model)


def rss_phase(args: argparse.Namespace) -> int:
    """Child process: two AdamW steps; prints the peak RSS they added, in MiB."""
    _label, method, dropout, context = SETUPS[args.setup]
    asr_model = setup_model(args.model, method, dropout, context)
    batch = noise_batch(asr_model, args.batch_size, args.seconds)
    trainable = [p for p in asr_model.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    asr_model.module.train()
    for _ in range(2):
        asr_model.loss(batch).backward()
        optimizer.step()
        optimizer.zero_grad()
    added = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(f"RSS_ADDED_MIB {added / 1024:.0f}")
    return 0


def child_rss(args: argparse.Namespace, setup: int, glibc_default: bool) -> int:
    env = {**os.environ, "ASR_KEEP_MALLOC": "1" if glibc_default else "0"}
    command = [sys.executable, "-m", "benchmarks.lora_memory", "--phase", "rss", "--setup", str(setup)]
    command += ["--model", args.model, "--batch-size", str(args.batch_size), "--seconds", str(args.seconds)]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return int(next(line for line in out.splitlines() if line.startswith("RSS_ADDED_MIB")).split()[1])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="whisper-base", help="registered name or Whisper checkpoint dir")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each (noise) clip")
    parser.add_argument("--setup", type=int, default=0, help=argparse.SUPPRESS)
    add_common_arguments(parser, ("rss",), "lora-memory")


def render(result: dict) -> str:
    """The section's tables from a saved result."""
    rss, rows = result["rss_added_mib"], result["rows"]
    base = rows[0]["saved_bytes"] + rows[0]["state_bytes"]
    lines = [
        f"{result['model']}, batch {result['batch_size']} x {result['seconds']:g} s noise clips, CPU fp32.",
        "",
        "Peak RSS added by two AdamW steps (each in its own process):",
        "",
        "| setup | glibc default | fixed mmap/trim threshold (every `asr` command) |",
        "|---|---|---|",
        *(f"| {r['setup']} | {r['glibc_default']} MiB | {r['fixed_thresholds']} MiB |" for r in rss),
        "",
        "Exact bytes of the tensors autograd saves for backward (one forward), and the trainable state:",
        "",
        "| setup | activations saved for backward | trainable state (w, grad, 2 Adam moments) | sum | vs full FT at 30 s |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        saved, state = r["saved_bytes"], r["state_bytes"]
        lines.append(
            f"| {r['setup']} | {saved / 2**20:.0f} MiB | {state / 2**20:.0f} MiB | "
            f"{(saved + state) / 2**20:.0f} MiB | {(saved + state) / base:.2f}x |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if args.phase == "rss":
        return rss_phase(args)
    check_writable(args)
    rss = {(setup, default): child_rss(args, setup, default) for setup in (0, 1) for default in (True, False)}
    rows = []
    for label, method, dropout, context in SETUPS:
        saved, state = measure(args.model, method, dropout, context, args.batch_size, args.seconds)
        rows.append({"setup": label, "saved_bytes": saved, "state_bytes": state})
        print(f"{label}: saved {saved / 2**20:.0f} MiB, trainable state {state / 2**20:.0f} MiB", flush=True)
    result = {
        "model": Path(args.model).name,
        "batch_size": args.batch_size,
        "seconds": args.seconds,
        "rss_added_mib": [
            {"setup": SETUPS[i][0], "glibc_default": rss[(i, True)], "fixed_thresholds": rss[(i, False)]}
            for i in (0, 1)
        ],
        "rows": rows,
    }
    publish(args, "lora_memory", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
