"""An exported Whisper without our code: a plain transformers pipeline (always 30 s) against
``asr evaluate``'s default path (the context the model was fine-tuned at), on the same clips.

    python -m benchmarks.export_pipeline --model runs/demo/whisper-base-lora/export \\
        --manifest runs/demo/data/manifests/test.jsonl

The pipeline is what a Hub user runs; the card's usage section shows exactly this call.
Saves ``runs/benchmarks/export-pipeline.json`` and rewrites that section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.inference import EvalSettings, transcribe_manifest
from asr.metrics import score
from asr.models import load_model
from asr.models.spec import DecodeOptions
from benchmarks.markdown import add_publish_arguments, check_writable, publish, table

TITLE = "An export outside the toolkit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="an exported (merged) Whisper folder")
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    add_publish_arguments(parser, "export-pipeline")


def render(result: dict) -> str:
    """The section's table from a saved result."""
    rows = [
        [r["decoder"], f"{r['cer']:.4f}", *(str(r[k]) for k in ("substitutions", "deletions", "insertions")),
         f"{r['seconds']:.1f}"]
        for r in result["rows"]
    ]  # fmt: skip
    lines = [
        f"Export `{result['model']}`, {result['n_clips']} clips of `{result['manifest']}`.",
        "",
        *table(["decoder", "CER", "S", "D", "I", "seconds"], rows),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from transformers import pipeline

    check_writable(args)
    torch.set_num_threads(args.threads)
    utts = read_manifest(args.manifest)[: args.limit]
    refs = [u.text for u in utts]
    asr = pipeline("automatic-speech-recognition", model=str(args.model), device="cpu")
    start = time.perf_counter()
    plain = [
        asr(load_audio(u.audio), generate_kwargs={"language": "zh", "task": "transcribe"})["text"]
        for u in utts
    ]
    plain_s = time.perf_counter() - start

    model = load_model(args.model, device="cpu")
    settings = EvalSettings(batch_size=16, decode=DecodeOptions(), progress=False)
    start = time.perf_counter()
    ours = transcribe_manifest(model, utts, Path(tempfile.mkdtemp(prefix="bench-export-")), settings)
    ours_s = time.perf_counter() - start
    context = model.decoding_settings(settings.decode)["audio_context"]

    ids = [u.id for u in utts]
    systems = [
        ('transformers `pipeline("automatic-speech-recognition")` (30 s, no guard)', plain, plain_s),
        (f"`asr evaluate` default (audio_context {context}, guard)", [r["prediction"] for r in ours], ours_s),
    ]
    rows = []
    for name, hyps, seconds in systems:
        m = score(ids, refs, hyps).metrics
        rows.append({"decoder": name, "cer": m.cer, "substitutions": m.substitutions,
                     "deletions": m.deletions, "insertions": m.insertions, "seconds": seconds})  # fmt: skip
    result = {"model": str(args.model), "manifest": str(args.manifest), "n_clips": len(utts), "rows": rows}
    publish(args, "export_pipeline", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
