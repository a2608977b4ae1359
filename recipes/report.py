"""``asr report``: the leaderboard of finished runs (results.md/.csv/.tex, plots, HTML error reports).

    asr report runs/benchmark --out runs/benchmark/report --html
    asr report runs/demo/whisper-base-lora runs/eval/whisper-small --baseline "whisper-base zero-shot"
    asr report runs/benchmark --readme README.md      # regenerate the README's results tables

Each RUN_DIR is an evaluation (metrics.json), a fine-tuning run (summary.json, metrics_test.json),
a benchmark stage marked skipped, or a folder of those (a benchmark's or asr zero-shot's output).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from asr.arguments import non_negative_int
from asr.io import check_output_dir
from asr.report.leaderboard import write_leaderboard
from asr.report.readme import replace_block, results_block


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--out", type=Path, default=None, help="default: the first RUN_DIR's report/")
    parser.add_argument(
        "--baseline", default=None, help='row label ("whisper-base zero-shot") or 1-based index'
    )
    parser.add_argument("--bootstrap", type=non_negative_int, default=1000, help="paired bootstrap resamples")
    parser.add_argument("--html", action="store_true", help="also write report.html beside every evaluation")
    parser.add_argument(
        "--embed-audio-max-kb",
        type=non_negative_int,
        default=0,
        help="inline clips up to this size in report.html (0: link)",
    )
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--readme", type=Path, default=None, help="rewrite the generated results in this file"
    )


def run(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out or args.runs[0] / "report")  # before any run folder is read
    board = write_leaderboard(
        args.runs,
        out,
        baseline=args.baseline,
        n_bootstrap=args.bootstrap,
        plots=not args.no_plots,
        html=args.html,
        embed_audio_max_bytes=1024 * args.embed_audio_max_kb,
    )
    print((out / "results.md").read_text(encoding="utf-8"))
    for path in board.files + board.html:
        print(f"wrote {path}")
    if args.readme:
        command = shlex.join(["asr", "report", *map(str, args.runs), "--readme", str(args.readme)])
        replace_block(args.readme, results_block(board.rows, command))
        print(f"rewrote the generated results in {args.readme}")
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
