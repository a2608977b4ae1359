"""Size, memory and CPU speed of each registered model at its real size, one command.

    python -m benchmarks.footprint [--models whisper-small xlsr-53-zh ...] [--utterances 4]

The weights are the real-size replicas of :mod:`tests.model_factory` (the publishers' layouts,
configs and shapes with random weights), written once under ``--work``. Per model, each measurement runs
in its own child process, so its peak resident memory (``getrusage`` max RSS) is that model's:

- ``eval``: load time, parameters, transcription of ``--utterances`` demo test clips one at a
  time (seconds per utterance; Whisper decodes up to its hallucination-guard cap, which random
  weights reach) and the peak RSS;
- ``train``: LoRA with the model's ``configs/<name>-lora.yaml`` settings (trainable parameters,
  gradient checkpointing where the config turns it on),
  ``--steps`` optimizer steps at ``--batch-size`` demo training clips (AdamW, fp32; seconds of
  the last step) and the peak RSS.

Prints a markdown table, saves ``runs/benchmarks/<section>.json`` and rewrites that section of
BENCHMARKS.md (``footprint``; ``--section footprint-large`` for the large Whispers; ``--no-write``:
print only). The speech-LLMs (``AUDIO_LLM_MODELS``) are measured on request, in their own section:
``--models qwen3-asr-0.6b glm-asr-nano fun-asr-nano --section footprint-audio-llm``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from asr.io import write_json
from asr.train.model_setup import enable_gradient_checkpointing
from benchmarks.markdown import add_common_arguments, check_writable, publish
from tests.model_factory import NAMES, build

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MODELS = (
    "whisper-tiny",
    "whisper-base",
    "whisper-small",
    "xlsr-53-zh",
    "paraformer-large",
    "sensevoice-small",
    "whisper-large-v3-turbo",
    "whisper-large-v3",
)
# registered but not in the default run: measure with --models (and --section footprint-audio-llm)
AUDIO_LLM_MODELS = ("qwen3-asr-0.6b", "glm-asr-nano", "fun-asr-nano", "qwen3-asr-1.7b")
PHASES = ("eval", "train")
TITLE = "Footprint of every model at its real size"


def _rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def _clips(work: Path, split: str, n: int) -> tuple[list[Any], list[str]]:
    from asr.data.audio import load_audio
    from asr.data.manifest import read_manifest

    utts = read_manifest(work / "data" / "manifests" / f"{split}.jsonl")[:n]
    return [load_audio(u.audio) for u in utts], [u.text_norm for u in utts]


def _lora_config(name: str) -> dict[str, Any]:
    from asr.typed_config import read_config_file

    return read_config_file(REPO / "configs" / f"{name}-lora.yaml")  # over its base config


def _lora_settings(name: str) -> dict[str, Any]:
    lora = dict(_lora_config(name).get("lora") or {})
    return {k: v for k, v in lora.items() if v is not None}


def run_phase(phase: str, name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from asr.models import load_model
    from asr.models.spec import DecodeOptions

    work = Path(args.work)
    baseline = _rss()
    start = time.perf_counter()
    model = load_model(work / "models" / name, device="cpu", dtype="fp32")
    result: dict[str, Any] = {"load_seconds": time.perf_counter() - start}
    result["parameters"] = sum(p.numel() for p in model.module.parameters())
    if phase == "eval":
        waves, _ = _clips(work, "test", args.utterances)
        options = DecodeOptions(language=model.spec.language or "zh")
        model.transcribe(waves[:1], options, durations=[len(waves[0]) / 16000])  # warm-up
        start = time.perf_counter()
        for wave in waves:
            model.transcribe([wave], options, durations=[len(wave) / 16000])
        result["seconds_per_utterance"] = (time.perf_counter() - start) / len(waves)
        result["audio_seconds"] = sum(len(w) for w in waves) / 16000 / len(waves)
    else:
        waves, texts = _clips(work, "train", args.batch_size)
        model.configure_training(model.train_options(_lora_config(name).get("model_options") or {}))
        model.set_trainable("lora", _lora_settings(name))
        if _lora_config(name).get("gradient_checkpointing"):  # as the fine-tuning engine does
            enable_gradient_checkpointing(model)
        module = model.module
        module.train()
        trainable = [p for p in module.parameters() if p.requires_grad]
        result["trainable_parameters"] = sum(p.numel() for p in trainable)
        optimizer = torch.optim.AdamW(trainable, lr=1e-4)
        step_seconds = []
        for _ in range(args.steps):
            start = time.perf_counter()
            batch = model.collate(waves, texts)
            loss = model.loss(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step_seconds.append(time.perf_counter() - start)
        result["step_seconds"] = step_seconds[-1]
        result["loss"] = float(loss.detach())
    result["baseline_rss"] = baseline
    result["peak_rss"] = _rss()
    return result


def render(result: dict[str, Any]) -> str:
    """The section's table from a saved result (a failed model's row says why)."""
    rows, failures, batch_size = result["rows"], result["failures"], result["batch_size"]

    def gib(x: float) -> str:
        return f"{x / 2**30:.2f} GiB"

    lines = [
        f"Random-weight replicas, CPU {result['threads']} threads, fp32, each measurement in its own child "
        f"process. Evaluation: demo test clips one at a time (mean {result['audio_seconds']:.1f} s of audio; "
        "Whisper and the speech-LLMs decode up to their guard's token cap, which random weights reach, so their s/utt is an upper "
        f"bound). Training: LoRA as in `configs/<name>-lora.yaml` (its audio_context too), batch {batch_size}, "
        f"AdamW, time of step {result['steps']}.",
        "",
        "| model | parameters | LoRA trainable | load | peak RSS eval | s/utt (eval) | peak RSS train step | s/step (batch "
        f"{batch_size}) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in result["models"]:
        if name in failures:
            lines.append(f"| {name} | not measured: {failures[name]} | | | | | | |")
            continue
        ev, tr = rows[name].get("eval"), rows[name].get("train")
        cells = [
            f"{ev['parameters'] / 1e6:.1f} M" if ev else "-",
            f"{tr['trainable_parameters'] / 1e6:.2f} M ({100 * tr['trainable_parameters'] / tr['parameters']:.2f}%)"
            if tr
            else "-",
            f"{ev['load_seconds']:.1f} s" if ev else "-",
            gib(ev["peak_rss"]) if ev else "-",
            f"{ev['seconds_per_utterance']:.2f}" if ev else "-",
            gib(tr["peak_rss"]) if tr else "-",
            f"{tr['step_seconds']:.1f}" if tr else "-",
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if result["notes"]:
        lines += ["", *(f"- {name}: {note}" for name, note in result["notes"].items())]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="registered names")
    parser.add_argument("--utterances", type=int, default=4, help="demo test clips transcribed per model")
    parser.add_argument("--batch-size", type=int, default=4, help="training clips per step")
    parser.add_argument("--steps", type=int, default=2, help="training steps (the last is timed)")
    parser.add_argument("--work", default=None, help="where replicas and data go (default: a temp dir)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    add_common_arguments(parser, (*PHASES, "replica"), "footprint")
    parser.add_argument("--name", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(args.threads)
    if args.phase == "replica":  # a child: the replica, written outside the parent (see below)
        build(args.name, Path(args.work) / "models" / args.name, size="real")
        return 0
    if args.phase:  # a child: one measurement, result as JSON
        result = run_phase(args.phase, args.name, args)
        write_json(Path(args.work) / f"{args.name}-{args.phase}.json", result)
        return 0
    check_writable(args)

    from asr.data.prepare import prepare

    unknown = [m for m in args.models if m not in NAMES]
    if unknown:
        raise SystemExit(f"no replica for {', '.join(unknown)}; known: {', '.join(NAMES)}")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-footprint-"))
    args.work = str(work)
    if not (work / "data" / "manifests" / "test.jsonl").is_file():
        prepare(REPO / "demo" / "cs-mage-demo", work / "data")
    waves, _ = _clips(work, "test", args.utterances)

    rows: dict[str, dict[str, dict[str, Any]]] = {}
    failures: dict[str, str] = {}
    notes: dict[str, str] = {}
    for name in args.models:
        target = work / "models" / name
        if not (target / ".replica-complete").is_file():
            print(f"{name}: writing the replica ...", flush=True)
            # in a child: Linux carries a process's RSS into its children's max RSS (getrusage
            # survives fork and exec), so a replica built here would raise every measured peak
            subprocess.run(
                [sys.executable, "-m", "benchmarks.footprint", "--phase", "replica", "--name", name, "--work", str(work)],
                cwd=REPO, check=True,
            )  # fmt: skip
            (target / ".replica-complete").write_text("", encoding="utf-8")
        rows[name] = {}
        for phase in PHASES:
            command = [sys.executable, "-m", "benchmarks.footprint", "--phase", phase, "--name", name,
                       "--work", str(work), "--utterances", str(args.utterances),
                       "--batch-size", str(args.batch_size), "--steps", str(args.steps),
                       "--threads", str(args.threads)]  # fmt: skip
            print(f"{name}: {phase} ...", flush=True)
            try:
                subprocess.run(command, cwd=REPO, check=True, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                failures.setdefault(name, f"{phase} over {args.timeout:.0f} s")
                continue
            except subprocess.CalledProcessError as err:
                failures.setdefault(name, f"{phase} failed (exit {err.returncode})")
                continue
            rows[name][phase] = json.loads((work / f"{name}-{phase}.json").read_text(encoding="utf-8"))
            print(f"{name}: {phase}: {json.dumps(rows[name][phase])}", flush=True)
        if name in failures and rows[name]:  # a partial row is still useful: missing cells show "-"
            notes[name] = failures.pop(name)
    result = {
        "models": list(args.models),
        "threads": args.threads,
        "audio_seconds": sum(len(w) for w in waves) / 16000 / len(waves),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rows": rows,
        "failures": failures,
        "notes": notes,
    }
    publish(args, "footprint", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
