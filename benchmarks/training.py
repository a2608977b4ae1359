"""Training speed, memory and validation CER on the same demo clips and Whisper base weights, one command.

    python -m benchmarks.training [--steps 30] [--batch-size 8] [--manifest M] [--model DIR]

(a) the corpus authors' first recipe: transformers ``Trainer``, log-mel features precomputed
    with ``datasets.map`` (padded to 3000 frames), batch 8, fp32, encoder frozen, decoder trained;
(b) the ``asr finetune`` engine, same method (``decoder``), batch, steps and learning rate: audio
    is decoded per batch and the frozen encoder's output is computed once per clip and cached,
    (b1) at Whisper's 30 s, (b2) at ``audio_context: auto``, (b3) at ``auto`` with
    ``freeze_cross_kv: true`` (the cross-attention keys/values cached instead);
(c) the engine's LoRA (all attention projections) vs full fine-tuning: peak memory and
    trainable parameters over a few steps.
After the same number of steps every (a)/(b) model is decoded on the validation split by
``asr evaluate`` (greedy; (a) at 30 s, (b) at the context it trained at), so speed is
compared at a stated CER. Each phase runs in its own child process (same interpreter, clips and
weights), so its peak resident memory (``getrusage`` max RSS) is its own: in one process, memory
freed by one phase is reused by the next and the peaks cannot be told apart. Prints
utterances/s, peak RSS, loss curves and CER with the ratios; saves ``runs/benchmarks/training.json``
and rewrites the ``training`` section of BENCHMARKS.md.
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

import torch
from transformers import TrainerCallback

from asr.io import write_json
from benchmarks.markdown import add_common_arguments, check_writable, publish

REPO = Path(__file__).resolve().parents[1]
TITLE = "Training against the authors' recipe"


class StepClock(TrainerCallback):
    """Wall time from the start of training to each optimizer step, and the logged losses."""

    def __init__(self) -> None:
        self.begin = 0.0
        self.step_times: dict[int, float] = {}
        self.losses: dict[int, float] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_times[state.global_step] = time.perf_counter() - self.begin

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.losses[state.global_step] = float(logs["loss"])

    @property
    def train_seconds(self) -> float:
        return max(self.step_times.values())


def authors_recipe(
    hf_dir: Path, utts: list, steps: int, batch_size: int, lr: float, out: Path
) -> dict[str, Any]:
    """(a): datasets.map precomputes 80x3000 log-mels and labels; Trainer trains the decoder."""
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments, WhisperForConditionalGeneration, WhisperProcessor

    from asr.data.audio import load_audio

    processor = WhisperProcessor.from_pretrained(hf_dir)
    processor.tokenizer.set_prefix_tokens(language="zh", task="transcribe", predict_timestamps=False)

    def prepare(row: dict) -> dict:
        audio = load_audio(row["audio"])
        row["input_features"] = processor.feature_extractor(audio, sampling_rate=16000).input_features[0]
        row["labels"] = processor.tokenizer(row["sentence"]).input_ids
        return row

    raw = Dataset.from_list([{"audio": u.audio, "sentence": u.text_norm} for u in utts])
    start = time.perf_counter()
    data = raw.map(prepare, remove_columns=raw.column_names)
    prep_seconds = time.perf_counter() - start

    model = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32)
    model.model.encoder.requires_grad_(False)
    start_id = model.config.decoder_start_token_id

    def collate(features: list[dict]) -> dict[str, torch.Tensor]:  # the Whisper fine-tuning blog's collator
        batch = processor.feature_extractor.pad(
            [{"input_features": f["input_features"]} for f in features], return_tensors="pt"
        )
        labels_batch = processor.tokenizer.pad(
            [{"input_ids": f["labels"]} for f in features], return_tensors="pt"
        )
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == start_id).all():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return batch

    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch_size,
        learning_rate=lr,
        max_steps=steps,
        warmup_steps=0,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        remove_unused_columns=False,
        dataloader_num_workers=0,
        seed=42,
        disable_tqdm=True,
    )
    clock = StepClock()
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, callbacks=[clock])
    trainer.train()
    trainer.save_model(str(out / "model"))
    processor.save_pretrained(out / "model")
    return {"prep_seconds": prep_seconds, "train_seconds": clock.train_seconds, "losses": clock.losses}


def engine_run(
    model: str, data: Path, out: Path, steps: int, batch_size: int, *overrides: str
) -> dict[str, Any]:
    """(b)/(c): ``asr finetune`` with one cheap validation at the end and no zero-shot pass."""
    from asr.train.finetune_config import load_finetune_config
    from asr.train.recipe import finetune

    cfg = load_finetune_config(
        None,
        [
            f"model={model}",
            f"data={data}",
            f"output_dir={out}",
            f"max_steps={steps}",
            f"eval_steps={steps}",
            f"batch_size={batch_size}",
            "eval_limit=1",
            "zero_shot=false",
            "bootstrap=0",
            "warmup_ratio=0",
            "logging_steps=1",
            "num_workers=0",
            "report_to=[]",
            *overrides,
        ],
    )
    clock = StepClock()
    summary = finetune(cfg, callbacks=[clock])
    assert summary is not None  # a single process is the main one
    return {
        "train_seconds": clock.train_seconds,
        "losses": clock.losses,
        "trainable": summary.trainable_parameters,
        "total": summary.total_parameters,
    }


def _curve(losses: dict, steps: int) -> str:
    losses = {int(k): v for k, v in losses.items()}  # JSON keys are strings
    marks = sorted({1, max(1, steps // 4), max(1, steps // 2), max(1, 3 * steps // 4), steps})
    return ", ".join(f"{s}: {losses[s]:.3f}" for s in marks if s in losses)


# engine phases of (b): the overrides each adds to method=decoder
ENGINE = {
    "ours_full": ("model_options.audio_context=full",),
    "ours_auto": ("model_options.audio_context=auto",),
    "ours": ("model_options.audio_context=auto", "model_options.freeze_cross_kv=true"),
}
ENGINE_LABEL = {
    "ours_full": "(b1) asr finetune engine, method decoder, cached encoder, 30 s",
    "ours_auto": "(b2) the same at `audio_context: auto`",
    "ours": "(b3) the same at `auto` + `freeze_cross_kv: true` (cached cross-attention K/V)",
}
PHASES = ("authors", *ENGINE, "lora", "full")


def run_phase(phase: str, args: argparse.Namespace) -> dict[str, Any]:
    """One phase in this process; adds ``baseline_rss``/``peak_rss`` (bytes) to its result."""
    from asr.models import get_spec
    from asr.models.sources import resolve

    work = Path(args.work)
    data = work / "data"
    spec, hf_dir = resolve(args.model)
    lr = spec.learning_rate.get("decoder", get_spec("whisper-base").learning_rate["decoder"])
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    if phase == "authors":
        from asr.data.manifest import read_manifest

        utts = read_manifest(data / "manifests" / "train.jsonl")
        result = authors_recipe(hf_dir, utts, args.steps, args.batch_size, lr, work / phase)
    elif phase in ENGINE:
        overrides = ("method=decoder", f"learning_rate={lr}", *ENGINE[phase])
        result = engine_run(args.model, data, work / phase, args.steps, args.batch_size, *overrides)
    else:
        result = engine_run(
            args.model, data, work / phase, args.memory_steps, args.batch_size, f"method={phase}"
        )
    result["baseline_rss"] = baseline
    result["peak_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return result


def validation_cer(model_dir: Path, manifest: Path, out: Path, *extra: str) -> dict[str, Any]:
    """``asr evaluate`` of a trained model (its own process): CER and S/D/I on ``manifest``."""
    command = [sys.executable, "-m", "asr.cli", "evaluate", "--model", str(model_dir), "--manifest",
               str(manifest), "--out", str(out), "--bootstrap", "0", "--no-progress", *extra]  # fmt: skip
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {k: metrics[k] for k in ("cer", "substitutions", "deletions", "insertions", "n_utterances")}


def _cer(r: dict[str, Any]) -> str:
    v = r["validation"]
    return f"{v['cer']:.4f} ({v['substitutions']}/{v['deletions']}/{v['insertions']})"


def render(result: dict[str, Any]) -> str:
    """The section's tables from a saved result."""
    results, steps, batch_size = result["phases"], result["steps"], result["batch_size"]
    a, lora, full = results["authors"], results["lora"], results["full"]
    n = steps * batch_size
    a_ups = n / a["train_seconds"]
    a_e2e = n / (a["train_seconds"] + a["prep_seconds"])

    def mib(x: float) -> str:
        return f"{x / 2**20:.0f} MiB"

    def added(r: dict) -> float:
        return r["peak_rss"] - r["baseline_rss"]

    def row(label: str, r: dict[str, Any], e2e: float) -> str:
        ups = n / r["train_seconds"]
        return (
            f"| {label} | {ups:.2f} | {e2e:.2f} | {ups / a_ups:.2f}x | {mib(r['peak_rss'])} | {mib(added(r))} | "
            f"{_curve(r['losses'], steps)} | {_cer(r)} |"
        )

    lines = [
        f"{result['model']}, encoder frozen / decoder trained, {result['n_clips']} demo clips, batch {batch_size}, "
        f"{steps} steps, fp32, CPU {result['threads']} threads; each phase in its own child process.",
        "",
        f"Validation CER (S/D/I): the model after step {steps}, `asr evaluate` greedy on the "
        f"{result['n_val']} validation clips, (a) at 30 s, (b) at the context it trained at.",
        "",
        "| system | utt/s (training) | utt/s (incl. feature prep) | speed vs (a) | peak RSS | added by training "
        "| loss at steps | validation CER |",
        "|---|---|---|---|---|---|---|---|",
        row("(a) authors' recipe: datasets.map log-mels (3000 frames) + Trainer", a, a_e2e),
        *(row(ENGINE_LABEL[p], results[p], n / results[p]["train_seconds"]) for p in ENGINE),
        "",
        f'(a)\'s feature precomputation took {a["prep_seconds"]:.1f} s (in its "incl." column only); '
        f"the engine decodes audio and computes features inside its training time.",
        "",
        f"LoRA (all attention projections) vs full fine-tuning with the engine ({result['memory_steps']} steps, "
        f"batch {batch_size}, 30 s):",
        "",
        "| method | trainable parameters | share | peak RSS | added by training |",
        "|---|---|---|---|---|",
    ]
    for name, r in (("lora", lora), ("full", full)):
        lines.append(
            f"| {name} | {r['trainable']:,} | {100 * r['trainable'] / r['total']:.2f}% | "
            f"{mib(r['peak_rss'])} | {mib(added(r))} |"
        )
    lines += [
        "",
        f"LoRA/full: {lora['trainable'] / full['trainable']:.4f}x trainable parameters, "
        f"{lora['peak_rss'] / full['peak_rss']:.2f}x peak memory.",
    ]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=None, help="default: the demo train split")
    parser.add_argument(
        "--validation-manifest",
        type=Path,
        default=None,
        help="CER after training; default: the demo validation split",
    )
    parser.add_argument("--model", default="whisper-base", help="registered name or Whisper dir")
    parser.add_argument("--steps", type=int, default=30, help="optimizer steps of (a) and (b)")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps of each LoRA/full run")
    parser.add_argument("--batch-size", type=int, default=8)
    add_common_arguments(parser, PHASES, "training")
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)

    if args.phase:  # a child: one phase, result as JSON
        result = run_phase(args.phase, args)
        write_json(Path(args.work) / f"{args.phase}.json", result)
        return 0
    check_writable(args)

    from asr.data.manifest import read_manifest, write_manifest
    from asr.models.sources import resolve

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-train-"))
    manifest, validation = args.manifest, args.validation_manifest
    if manifest is None or validation is None:
        from asr.data.prepare import prepare

        prepare(REPO / "demo" / "cs-mage-demo", work / "demo")
        manifest = manifest or work / "demo" / "manifests" / "train.jsonl"
        validation = validation or work / "demo" / "manifests" / "validation.jsonl"
    utts = read_manifest(manifest)
    for split in ("train", "validation", "test"):
        write_manifest(work / "data" / "manifests" / f"{split}.jsonl", utts if split == "train" else utts[:1])
    _, hf_dir = resolve(args.model)  # fail here, not in a child, when the weights are missing
    print(
        f"{len(utts)} clips, model {hf_dir}, batch {args.batch_size}, {args.steps} steps, {args.threads} threads"
    )

    results = {}
    for phase in PHASES:
        command = [sys.executable, "-m", "benchmarks.training", "--phase", phase, "--work", str(work),
                   "--model", args.model, "--steps", str(args.steps), "--memory-steps", str(args.memory_steps),
                   "--batch-size", str(args.batch_size), "--threads", str(args.threads)]  # fmt: skip
        print(f"phase {phase} ...", flush=True)
        subprocess.run(command, cwd=REPO, check=True)
        results[phase] = json.loads((work / f"{phase}.json").read_text(encoding="utf-8"))
        results[phase]["losses"] = {int(k): v for k, v in results[phase]["losses"].items()}
    print("validation CER ...", flush=True)
    results["authors"]["validation"] = validation_cer(
        work / "authors" / "model", validation, work / "eval-authors", "--audio-context", "full"
    )
    for phase in ENGINE:
        results[phase]["validation"] = validation_cer(
            work / phase / "best", validation, work / f"eval-{phase}"
        )

    result = {
        "model": args.model,
        "n_clips": len(utts),
        "n_val": len(read_manifest(validation)),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "memory_steps": args.memory_steps,
        "threads": args.threads,
        "phases": results,
    }
    publish(args, "training", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
