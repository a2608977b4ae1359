"""Packing short clips into 30 s windows for stock Whisper: speed, CER, SER and attribution.

    python -m benchmarks.packing [--set NAME:MANIFEST[:BACKENDS] ...] [--subset NAME=M] [--limit N]
                                 [--model DIR] [--backends torch ct2]

One process, the same clips and weights, length-sorted batches as ``asr evaluate`` makes them.
Per batch, each system decodes in turn (the order rotates per batch, so a machine shared with
other jobs slows all alike): unpacked at full context (the baseline) and packed
(:func:`asr.models.whisper.packing.transcribe_packed`, whose windows that fail attribution are
decoded unpacked; the fallback windows are counted). Attribution: how many clips' hypotheses
differ from the unpacked ones, and the CER of each against the unpacked one (text moved, lost
or added). A ``--subset`` (e.g. the test split beside an ``all`` manifest) is scored again on its
clips alone, as decoded in the whole run. Saves ``runs/benchmarks/packing.json`` and rewrites
the ``packing`` section of BENCHMARKS.md.
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
from asr.models.whisper.packing import PackingStats, transcribe_packed
from benchmarks.markdown import add_common_arguments, check_writable, publish

REPO = Path(__file__).resolve().parents[1]
TITLE = "Packing short clips into 30 s windows"
Decoder = Callable[[list[np.ndarray], list[float]], list[str]]


def systems(model, gap_s: float, stats: PackingStats) -> dict[str, Decoder]:
    """The decoders compared, by row name (the first is the baseline)."""
    full = WhisperDecodeOptions(audio_context="full", packing=False)
    return {
        "unpacked, full context": lambda w, d: model.transcribe(w, full, d),
        f"packed, gap {gap_s:g} s": lambda w, d: transcribe_packed(
            model, w, full, d, gap_s=gap_s, stats=stats
        ),
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


def rows_for(
    utts, hyps: dict[str, list[str]], seconds: dict[str, float] | None, prefix: str, stats: dict | None = None
) -> list[dict]:
    """One row per system; ``seconds`` None for a subset scored from a larger run (no speed)."""
    ids, refs = [u.id for u in utts], [u.text for u in utts]
    names = list(hyps)
    base = hyps[names[0]]
    rows = []
    for name in names:
        m = score(ids, refs, hyps[name], n_bootstrap=0).metrics
        vs = score(ids, base, hyps[name], n_bootstrap=0)
        row = {
            "system": f"{prefix}{name}",
            "utt_per_s": None if seconds is None else len(utts) / seconds[name],
            "speed": None if seconds is None else seconds[names[0]] / seconds[name],
            "cer": m.cer,
            "ser": m.ser,
            "ins": m.insertions,
            "dele": m.deletions,
            "empty": sum(1 for h in hyps[name] if not h.strip()),
            "differs": sum(u["errors"] > 0 for u in vs.utterances) / len(utts),
            "cer_vs_full": vs.metrics.cer,
        }
        if stats is not None and name.startswith("packed"):
            row["fallback"] = [stats["packing_fallback_windows"], stats["packed_windows"]]
        rows.append(row)
    return rows


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: list[dict], baseline: str = "unpacked", fallback_column: bool = True) -> list[str]:
    """Markdown rows of :func:`rows_for`, compared with the first system (``baseline``);
    ``fallback_column``: the packed windows decoded unpacked (packing rows only)."""
    fallback_head = "windows fallen back | " if fallback_column else ""
    lines = [
        f"| system | utt/s | speed vs {baseline} | CER | SER | ins | del | empty hyps | "
        f"{fallback_head}differs from {baseline} | CER vs {baseline} |",
        "|---|---|---|---|---|---|---|---|" + "---|" * (3 if fallback_column else 2),
    ]
    for r in rows:
        fallback = ("/".join(map(str, r["fallback"])) if r.get("fallback") else "-") + " | "
        lines.append(
            f"| {r['system']} | {_num(r['utt_per_s'], '.2f')} | {_num(r['speed'], '.2f')}"
            f"{'' if r['speed'] is None else 'x'} | {r['cer']:.4f} | {r['ser']:.3f} | "
            f"{r['ins']} | {r['dele']} | {r['empty']} | {fallback if fallback_column else ''}{r['differs']:.1%} | {r['cer_vs_full']:.4f} |"
        )
    return lines


def render(result: dict) -> str:
    """One table per clip set, from a saved result."""
    lines = [
        f"Whisper `{result['model']}`, CPU {result['threads']} threads, batch {result['batch_size']}, "
        "unpacked and packed both at 30 s context; one process, systems interleaved batch by batch.",
    ]
    for clips in result["sets"]:
        lines += [
            "",
            f"**{clips['name']}**: {clips['n_clips']} clips ({clips['audio_seconds']:.0f} s)"
            + (f"; {clips['note']}" if clips.get("note") else ""),
            "",
            *table(clips["rows"]),
        ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        type=clip_set,
        default=None,
        metavar="NAME:MANIFEST[:BACKEND,...]",
        help="a clip set and the backends to run on it (default: the demo's all.jsonl with --backends); repeatable",
    )
    parser.add_argument(
        "--subset",
        action="append",
        default=[],
        metavar="NAME=MANIFEST",
        help="also score the clips of MANIFEST in a set from the same folder (e.g. test=.../test.jsonl)",
    )
    parser.add_argument("--model", type=Path, default=REPO / "models/whisper-base")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--gap", type=float, default=1.0, help="silence between packed clips, seconds")
    parser.add_argument("--backends", nargs="+", choices=("torch", "ct2"), default=["torch"])
    add_common_arguments(parser, (), "packing")


def clip_set(spec: str) -> tuple[str, Path, list[str] | None]:
    """``NAME:MANIFEST[:BACKEND,...]`` as (name, manifest, backends or None for ``--backends``)."""
    name, _, rest = spec.partition(":")
    path, _, backends = rest.partition(":")
    chosen = backends.split(",") if backends else None
    if not name or not path or any(b not in ("torch", "ct2") for b in chosen or []):
        raise argparse.ArgumentTypeError(f"expected NAME:MANIFEST[:torch,ct2], got {spec!r}")
    return name, Path(path), chosen


def measure_set(
    model, manifest: Path, name: str, backends: list[str], subsets: dict[str, set[str]], args
) -> dict:
    """Every backend's rows for one manifest (and its subsets)."""
    utts = sorted(read_manifest(manifest)[: args.limit], key=lambda u: u.duration)
    waves = [load_audio(u.audio) for u in utts]
    durations = [u.duration for u in utts]
    print(f"{name}: {len(utts)} clips, {sum(durations):.0f} s of audio", flush=True)
    rows: list[dict] = []
    for backend in backends:
        model.set_backend(backend)
        stats = PackingStats()
        hyps, seconds = run_interleaved(systems(model, args.gap, stats), waves, durations, args.batch_size)
        rows += rows_for(utts, hyps, seconds, f"{backend}: ", stats.as_dict())
        for sub, ids in subsets.items():
            keep = [k for k, u in enumerate(utts) if u.id in ids]
            if keep and len(keep) < len(utts):
                picked = {n: [h[k] for k in keep] for n, h in hyps.items()}
                rows += rows_for([utts[k] for k in keep], picked, None, f"{backend}, {sub} split only: ")
    return {"name": name, "n_clips": len(utts), "audio_seconds": sum(durations), "rows": rows}


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    torch.set_num_threads(args.threads)
    chosen = args.sets or [("demo all", REPO / "runs/demo/data/manifests/all.jsonl", None)]
    subsets: dict[Path, dict[str, set[str]]] = {}  # by the folder of the prepared corpus's manifests
    for spec in args.subset:
        sub, _, path = spec.partition("=")
        subsets.setdefault(Path(path).resolve().parent, {})[sub] = {u.id for u in read_manifest(Path(path))}
    print(f"model {args.model}, {args.threads} threads")
    model = load_model(str(args.model), device="cpu")
    sets = [
        measure_set(model, m, n, b or args.backends, subsets.get(m.resolve().parent, {}), args)
        for n, m, b in chosen
    ]
    result = {"model": args.model.name, "threads": args.threads, "batch_size": args.batch_size, "sets": sets}
    publish(args, "packing", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
