"""``asr evaluate``: transcribe a manifest with one model and score it.

asr evaluate --model MODEL --manifest runs/demo/data/manifests/test.jsonl --out runs/eval/ws
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import replace
from pathlib import Path

from asr.arguments import non_negative_int, positive_float, positive_int
from asr.data.manifest import read_manifest
from asr.errors import ASRError
from asr.inference import (
    EvalSettings,
    check_new_run,
    choose_backend,
    run_settings,
    save_run_settings,
    score_rows,
    transcribe_manifest,
)
from asr.models import load_model
from asr.models.base import ASRModel
from asr.models.registry import family_classes
from asr.models.spec import DecodeOptions
from asr.report.html import write_error_report
from asr.run_dir import METRICS_FILE
from asr.run_records import Timing
from asr.timing import PhaseClock

log = logging.getLogger(__name__)


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
        default="auto",
        choices=["auto", "torch", "ct2"],
        help="auto (default): the fastest measured no worse (Whisper on CPU: ct2 int8 when installed, "
        "else torch; others: torch); ct2: CTranslate2 (Whisper; int8 on CPU, float16 on GPU)",
    )
    parser.add_argument("--ct2-compute-type", default=None, help="e.g. int8, int8_float32, float32, float16")
    parser.add_argument("--limit", type=positive_int, default=None, help="only the first N utterances")
    parser.add_argument(
        "--beam-size", type=positive_int, default=None, help="1 = greedy (default: registry value)"
    )
    parser.add_argument(
        "--language",
        default=None,
        help="decoding language of a multilingual model, e.g. zh or yue (Qwen3-ASR: the forced language)",
    )
    parser.add_argument("--no-guard", action="store_true", help="disable the hallucination guard")
    add_decoding_arguments(parser)
    parser.add_argument(
        "--bootstrap", type=non_negative_int, default=1000, help="bootstrap resamples for the CER CI"
    )
    parser.add_argument("--resume", action="store_true", help="continue a killed run in --out")
    parser.add_argument("--no-progress", action="store_true")


def add_decoding_arguments(parser: argparse.ArgumentParser, context_note: str = "") -> None:
    """``--context``, ``--max-tokens-per-second`` and each family's own decoding flags (also
    ``asr serve``'s); :func:`decode_options` reads them."""
    parser.add_argument(
        "--context",
        default=None,
        metavar="TEXT|FILE",
        help="context/hot words for models that take them (Qwen3-ASR, Fun-ASR-Nano; Whisper as its "
        "previous-text prompt)" + context_note,
    )
    parser.add_argument(
        "--max-tokens-per-second", type=positive_float, default=DecodeOptions.max_tokens_per_second
    )
    for family in family_classes():
        family.add_decode_arguments(parser)


def decode_options(args: argparse.Namespace, model: ASRModel) -> DecodeOptions:
    """The shared flags, then the model's family reads its own."""
    shared = DecodeOptions(
        beam_size=args.beam_size or model.spec.beam_size,
        language=args.language or model.spec.language,
        guard=not args.no_guard,
        max_tokens_per_second=args.max_tokens_per_second,
        context=read_context(args.context),
    )
    return model.decode_options(shared, args)


def read_context(value: str | None) -> str | None:
    """``--context``: the text itself, or the contents of a file of that name."""
    if value and Path(value).is_file():
        return Path(value).read_text(encoding="utf-8").strip()
    return value or None


def run(args: argparse.Namespace) -> int:
    clock = PhaseClock()  # the imports and argument parsing are done
    check_new_run(args.out, args.resume)
    utts = read_manifest(args.manifest)
    if args.limit is not None:
        utts = utts[: args.limit]
    if not utts:
        raise ASRError(f"{args.manifest}: no utterances")
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    choose_backend(
        model, args.backend, resume_dir=args.out if args.resume else None, compute_type=args.ct2_compute_type
    )
    decode = decode_options(args, model)
    settings = EvalSettings(
        batch_size=args.batch_size or model.spec.eval_batch_size,
        decode=decode,
        n_bootstrap=args.bootstrap,
        progress=not args.no_progress,
    )
    recorded = run_settings(model, str(args.model), args.manifest, args.limit, settings)
    save_run_settings(args.out, recorded, resume=args.resume, utts=utts)
    clock.lap("load")
    rows = transcribe_manifest(model, utts, args.out, settings, resume=args.resume)
    clock.lap("decode")
    record = score_rows(
        model, rows, args.out, settings, model_source=str(args.model), manifest=recorded.manifest
    ).record
    write_error_report(args.out)  # reads the metrics.json just written
    clock.lap("finish")
    replace(record, timing=Timing.from_clock(clock)).save(args.out / METRICS_FILE)
    print(json.dumps({"model": record.model, **record.metrics.headline()}, ensure_ascii=False))
    return 0
