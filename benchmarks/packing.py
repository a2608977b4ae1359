"""Packing short clips into 30 s windows for stock Whisper: speed, CER, SER and attribution.

    python -m benchmarks.packing [--manifest M] [--limit N] [--model DIR] [--backends torch ct2]

One process, the same clips and weights, length-sorted batches as ``asr evaluate`` makes them.
Per batch, each system decodes in turn (the order rotates per batch, so a machine shared with
other jobs slows all alike): unpacked full context (the default for a stock checkpoint),
unpacked ``audio_context=auto``, and packed (:func:`asr.models.whisper.packing.transcribe_packed`).
Attribution: how many clips' hypotheses differ from the unpacked full-context ones, and the
CER of each hypothesis against the unpacked full-context one (text moved, lost or added).
Saves ``runs/benchmarks/packing.json`` and rewrites the ``packing`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.metrics import score
from asr.models import load_model
from asr.models.whisper.options import WhisperDecodeOptions
from asr.models.whisper.packing import transcribe_packed
from benchmarks.markdown import add_common_arguments, check_writable, publish

REPO = Path(__file__).resolve().parents[1]
TITLE = "Packing short clips into 30 s windows"
Decoder = Callable[[list[np.ndarray], list[float]], list[str]]


def systems(model, gap_s: float) -> dict[str, Decoder]:
    """The decoders compared, by row name (the first is the baseline)."""
    full, auto = WhisperDecodeOptions(audio_context="full"), WhisperDecodeOptions(audio_context="auto")
    return {
        "unpacked, full context": lambda w, d: model.transcribe(w, full, d),
        "unpacked, audio_context=auto": lambda w, d: model.transcribe(w, auto, d),
        f"packed, gap {gap_s:g} s": lambda w, d: transcribe_packed(model, w, full, d, gap_s=gap_s),
    }


def run_interleaved(decoders: dict[str, Decoder], waves, durations, batch_size: int) -> tuple[dict, dict]:
    """Hypotheses and decode seconds per system, batch by batch, rotating the order."""
    names = list(decoders)
    hyps: dict[str, list[str]] = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    for b, lo in enumerate(range(0, len(waves), batch_size)):
        w, d = waves[lo : lo + batch_size], durations[lo : lo + batch_size]
        for name in names[b % len(names) :] + names[: b % len(names)]:
            start = time.perf_counter()
            hyps[name].extend(decoders[name](w, d))
            seconds[name] += time.perf_counter() - start
        print(f"batch {b + 1}: " + ", ".join(f"{n} {seconds[n]:.0f}s" for n in names), flush=True)
    return hyps, seconds


def rows_for(utts, hyps: dict[str, list[str]], seconds: dict[str, float], prefix: str) -> list[dict]:
    ids, refs = [u.id for u in utts], [u.text for u in utts]
    names = list(hyps)
    base = hyps[names[0]]
    rows = []
    for name in names:
        m = score(ids, refs, hyps[name], n_bootstrap=0).metrics
        vs = score(ids, base, hyps[name], n_bootstrap=0)
        rows.append(
            {
                "system": f"{prefix}{name}",
                "utt_per_s": len(utts) / seconds[name],
                "speed": seconds[names[0]] / seconds[name],
                "cer": m.cer,
                "ser": m.ser,
                "ins": m.insertions,
                "dele": m.deletions,
                "empty": sum(1 for h in hyps[name] if not h.strip()),
                "differs": sum(u["errors"] > 0 for u in vs.utterances) / len(utts),
                "cer_vs_full": vs.metrics.cer,
            }
        )
    return rows


def table(rows: list[dict], baseline: str = "unpacked full") -> list[str]:
    """Markdown rows of :func:`rows_for`, compared with the first system (``baseline``)."""
    lines = [
        f"| system | utt/s | speed vs {baseline} | CER | SER | ins | del | empty hyps | "
        f"differs from {baseline} | CER vs {baseline} |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['system']} | {r['utt_per_s']:.2f} | {r['speed']:.2f}x | {r['cer']:.4f} | {r['ser']:.3f} | "
            f"{r['ins']} | {r['dele']} | {r['empty']} | {r['differs']:.1%} | {r['cer_vs_full']:.4f} |"
        )
    return lines


def render(result: dict) -> str:
    """The section's table from a saved result."""
    return "\n".join(
        [
            f"Whisper `{result['model']}`, {result['n_clips']} demo clips ({result['audio_seconds']:.0f} s), CPU "
            f"{result['threads']} threads, batch {result['batch_size']}; one process, systems interleaved batch "
            "by batch.",
            "",
            *table(result["rows"]),
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", type=Path, default=REPO / "runs/demo/data/manifests/all.jsonl")
    parser.add_argument("--model", type=Path, default=REPO / "models/whisper-base")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gap", type=float, default=1.0, help="silence between packed clips, seconds")
    parser.add_argument("--backends", nargs="+", choices=("torch", "ct2"), default=["torch"])
    add_common_arguments(parser, (), "packing")


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    torch.set_num_threads(args.threads)
    utts = sorted(read_manifest(args.manifest)[: args.limit], key=lambda u: u.duration)
    waves = [load_audio(u.audio) for u in utts]
    durations = [u.duration for u in utts]
    audio_s = sum(durations)
    print(f"{len(utts)} clips, {audio_s:.0f} s of audio, model {args.model}, {args.threads} threads")
    model = load_model(str(args.model), device="cpu")
    rows: list[dict] = []
    for backend in args.backends:
        model.set_backend(backend)
        hyps, seconds = run_interleaved(systems(model, args.gap), waves, durations, args.batch_size)
        rows += rows_for(utts, hyps, seconds, f"{backend}: ")
    result = {
        "model": args.model.name,
        "n_clips": len(utts),
        "audio_seconds": audio_s,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "rows": rows,
    }
    publish(args, "packing", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
