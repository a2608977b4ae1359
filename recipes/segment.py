"""``asr segment``: cut recordings into CS-Mage-layout clips with a model's draft transcripts.

asr segment rec1.mp4 rec2.m4a --out new-corpus --model whisper-base
asr segment --apply-draft new-corpus        # after correcting new-corpus/draft.tsv
asr prepare --data-root new-corpus --out prepared --protocol random

Clips are cut at pauses found by silero-vad (16 kHz mono WAV, ids ``video_V_C``); the
transcripts are marked unverified (``verified`` = no) until a person corrects them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.arguments import non_negative_float, positive_float, positive_int
from asr.errors import ConfigError
from asr.longform.corpus import apply_draft, segment_media
from asr.longform.pipeline import PipelineSettings, model_transcriber
from asr.longform.segments import SegmentOptions
from recipes.transcribe import add_model_arguments, load, print_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("media", nargs="*", type=Path, help="video or audio recordings")
    parser.add_argument("--out", type=Path, required=False, help="corpus folder to write (or add to)")
    add_model_arguments(parser, required=False)
    parser.add_argument(
        "--first-video", type=positive_int, default=1, help="video number of the first new file"
    )
    parser.add_argument("--max-seconds", type=positive_float, default=15.0, help="longest clip")
    parser.add_argument("--max-gap", type=non_negative_float, default=0.5, help="longest pause inside a clip")
    parser.add_argument(
        "--apply-draft", type=Path, default=None, metavar="DIR", help="rebuild DIR's pkl from draft.tsv"
    )


def run(args: argparse.Namespace) -> int:
    if args.apply_draft is not None:
        print(f"{args.apply_draft}: {apply_draft(args.apply_draft)} clips in the pkl")
        return 0
    if not args.media or args.out is None:
        raise ConfigError("give recordings and --out (or --apply-draft DIR)")
    transcriber, name, batch, context = None, "", 16, 30.0
    if args.model:
        model, options = load(args)
        transcriber, name = model_transcriber(model, options), str(args.model)
        batch, context = args.batch_size or model.spec.eval_batch_size, model.max_input_seconds
    segments = SegmentOptions(
        max_seconds=min(args.max_seconds, context),
        max_gap_seconds=args.max_gap,
        threshold=args.vad_threshold,
        neg_threshold=min(SegmentOptions.neg_threshold, args.vad_threshold),
        pad_ms=150.0,
        max_pause_seconds=None,  # a clip is one slice of the recording
    )
    settings = PipelineSettings(batch_size=batch, segments=segments, progress=not args.no_progress)
    report = segment_media(args.media, args.out, transcriber, name, settings, first_video=args.first_video)
    return print_report(report, "segmented")


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
