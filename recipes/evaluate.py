"""``asr evaluate``: transcribe a manifest with one model and score it.

asr evaluate --model whisper-small --manifest runs/demo/data/manifests/test.jsonl --out runs/eval/ws
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from asr.arguments import non_negative_float, non_negative_int, positive_float, positive_int
from asr.data.manifest import read_manifest
from asr.errors import ASRError
from asr.inference import EvalSettings, check_new_run, evaluate, run_settings, save_run_settings
from asr.models import load_model
from asr.models.spec import DecodeOptions
from asr.models.whisper.context import parse_audio_context
from asr.report.html import write_error_report

log = logging.getLogger(__name__)


def audio_context_arg(value: str) -> str:
    """argparse type for ``--audio-context`` (a bad value is a usage error, exit 2)."""
    try:
        return parse_audio_context(value)
    except ASRError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered name, local checkpoint dir or Hub id")
    parser.add_argument("--manifest", required=True, type=Path, help="manifest jsonl (from asr prepare)")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="default: the model's registry value"
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "ct2"],
        help="ct2: CTranslate2 decoding (Whisper; int8 on CPU, float16 on GPU)",
    )
    parser.add_argument(
        "--audio-context",
        default=None,
        type=audio_context_arg,
        help="Whisper: full (30 s), auto (the batch's longest clip + 1 s in 5 s buckets, at least "
        "10 s) or seconds (auto with that floor); default: what the checkpoint was fine-tuned at, "
        "else auto (measured no worse than 30 s on stock whisper-base; see BENCHMARKS.md)",
    )
    parser.add_argument(
        "--packing",
        action="store_true",
        help="Whisper at 30 s context: decode several short clips per 30 s window (faster with ct2; "
        "see BENCHMARKS.md for its CER and attribution cost)",
    )
    parser.add_argument(
        "--packing-gap", type=non_negative_float, default=1.0, help="silence between packed clips (s)"
    )
    parser.add_argument("--ct2-compute-type", default=None, help="e.g. int8, int8_float32, float32, float16")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N utterances")
    parser.add_argument(
        "--beam-size", type=positive_int, default=None, help="1 = greedy (default: registry value)"
    )
    parser.add_argument(
        "--language",
        default=None,
        help="language code, e.g. zh or yue (Whisper token, Qwen3-ASR forced language)",
    )
    parser.add_argument("--no-guard", action="store_true", help="disable the hallucination guard")
    parser.add_argument(
        "--context",
        default=None,
        metavar="TEXT|FILE",
        help="context/hot words for models that take them (Qwen3-ASR)",
    )
    parser.add_argument(
        "--max-tokens-per-second", type=positive_float, default=DecodeOptions.max_tokens_per_second
    )
    parser.add_argument(
        "--bootstrap", type=non_negative_int, default=1000, help="bootstrap resamples for the CER CI"
    )
    parser.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    parser.add_argument("--no-progress", action="store_true")


def decode_options(args: argparse.Namespace, spec_language: str, spec_beam: int) -> DecodeOptions:
    return DecodeOptions(
        beam_size=args.beam_size or spec_beam,
        language=args.language or spec_language,
        guard=not args.no_guard,
        max_tokens_per_second=args.max_tokens_per_second,
        audio_context=args.audio_context,
        packing=args.packing,
        packing_gap_s=args.packing_gap,
        context=read_context(args.context),
    )


def read_context(value: str | None) -> str | None:
    """``--context``: the text itself, or the contents of a file of that name."""
    if value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8").strip()
    return value or None


def run(args: argparse.Namespace) -> int:
    check_new_run(args.out, args.resume)
    utts = read_manifest(args.manifest)
    if args.limit is not None:
        utts = utts[: args.limit]
    if not utts:
        raise ASRError(f"{args.manifest}: no utterances")
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    model.set_backend(
        args.backend, **({"compute_type": args.ct2_compute_type} if args.ct2_compute_type else {})
    )
    decode = decode_options(args, model.spec.language, model.spec.beam_size)
    settings = EvalSettings(
        batch_size=args.batch_size or model.spec.eval_batch_size,
        decode=decode,
        n_bootstrap=args.bootstrap,
        progress=not args.no_progress,
    )
    recorded = run_settings(model, str(args.model), args.manifest, args.limit, settings)
    save_run_settings(args.out, recorded, resume=args.resume)
    record = evaluate(
        model,
        utts,
        args.out,
        settings,
        resume=args.resume,
        model_source=str(args.model),
        manifest=recorded.manifest,
    ).record
    write_error_report(args.out)
    print(json.dumps({"model": record.model, **record.metrics.headline()}, ensure_ascii=False))
    return 0
