"""``asr transcribe``: whole videos and recordings to SRT/VTT/JSON/TXT with any model.

asr transcribe talk.mp4 interview.m4a --model whisper-base --out subs --format srt,vtt,json

Each file is streamed (any container PyAV decodes), cut at pauses by silero-vad into pieces
no longer than the model's context, and the pieces of all files are batched through the
same decoding as ``asr evaluate`` (hallucination guard included). Files already done are
skipped on a rerun; a bad file is reported and the others go on (exit status 1).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from asr.arguments import fraction, non_negative_float, positive_float, positive_int
from asr.inference import choose_backend
from asr.longform.pipeline import PipelineSettings, model_transcriber
from asr.longform.segments import SegmentOptions
from asr.longform.transcribe import BatchReport, parse_formats, transcribe_media
from asr.models import load_model
from asr.models.spec import DecodeOptions

log = logging.getLogger(__name__)


def add_engine_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Model, engine and decoding flags that :func:`load` reads (shared with ``asr serve``)."""
    parser.add_argument("--model", required=required, help="registered name or local checkpoint dir")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--dtype", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "ct2"],
        help="auto (default): Whisper on CPU ct2 int8 when installed, else torch; ct2: Whisper only",
    )
    parser.add_argument("--ct2-compute-type", default=None, help="e.g. int8, int8_float32, float16")
    parser.add_argument(
        "--beam-size", type=positive_int, default=None, help="1 = greedy (default: registry value)"
    )
    parser.add_argument("--language", default=None, help="Whisper language token, e.g. zh or yue")
    parser.add_argument("--no-guard", action="store_true", help="disable the hallucination guard")


def add_model_arguments(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """Engine flags, batch size and VAD flags (shared with ``asr segment``)."""
    add_engine_arguments(parser, required)
    parser.add_argument(
        "--batch-size", type=positive_int, default=None, help="default: the model's registry value"
    )
    parser.add_argument("--vad-threshold", type=fraction, default=SegmentOptions.threshold)
    parser.add_argument("--no-progress", action="store_true")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("media", nargs="+", type=Path, help="video or audio files (mp4, mkv, m4a, wav, ...)")
    add_model_arguments(parser)
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: beside each file)")
    parser.add_argument("--format", default="srt,vtt,json", help="comma-separated: srt, vtt, json, txt")
    parser.add_argument(
        "--max-seconds",
        type=positive_float,
        default=None,
        help="longest piece (default: the model's context, 30 s)",
    )
    parser.add_argument(
        "--max-gap",
        type=non_negative_float,
        default=SegmentOptions.max_gap_seconds,
        help="longest pause inside a piece",
    )
    parser.add_argument(
        "--max-pause",
        type=non_negative_float,
        default=None,
        help="shorten pauses inside a piece to this many seconds: fewer pieces, faster (default: keep them)",
    )
    parser.add_argument("--overwrite", action="store_true", help="redo files whose outputs exist")


def load(args: argparse.Namespace):
    """The model as ``asr evaluate`` loads it, and its decoding options."""
    model = load_model(args.model, device=args.device, dtype=args.dtype)
    choose_backend(model, args.backend, compute_type=args.ct2_compute_type)
    options = DecodeOptions(
        beam_size=args.beam_size or model.spec.beam_size,
        language=args.language or model.spec.language,
        guard=not args.no_guard,
    )
    return model, options


def print_report(report: BatchReport, verb: str) -> int:
    """One summary line (and one per failed file); 1 if any file failed."""
    stats = report.stats
    print(
        f"{verb} {len(report.done)} files ({stats.get('audio_seconds', 0.0):.1f} s of audio, "
        f"{int(stats.get('pieces', 0))} pieces), skipped {len(report.skipped)} already done, "
        f"{len(report.silent)} without speech, {len(report.failed)} failed"
    )
    for message in report.failed.values():
        print(f"failed: {message}", file=sys.stderr)
    return 1 if report.failed else 0


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.format)
    model, options = load(args)
    segments = SegmentOptions(
        max_seconds=min(args.max_seconds or model.max_input_seconds, model.max_input_seconds),
        max_gap_seconds=args.max_gap,
        threshold=args.vad_threshold,
        neg_threshold=min(SegmentOptions.neg_threshold, args.vad_threshold),
        max_pause_seconds=args.max_pause,
    )
    settings = PipelineSettings(
        batch_size=args.batch_size or model.spec.eval_batch_size,
        segments=segments,
        progress=not args.no_progress,
    )
    report = transcribe_media(
        args.media,
        model_transcriber(model, options),
        str(args.model),
        settings,
        out_dir=args.out,
        formats=formats,
        overwrite=args.overwrite,
    )
    return print_report(report, "transcribed")


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
