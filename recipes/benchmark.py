"""``asr benchmark``: zero-shot for every registered model, the configured fine-tunes, the leaderboard.

    asr benchmark --data runs/cs-mage --out runs/benchmark
    asr benchmark --data runs/demo/data --out runs/benchmark-demo --finetune whisper-base:lora --demo-schedule

Every stage resumes: a finished stage is skipped, a changed setting is refused unless --force.
A model whose weights cannot be found is a skipped row with the reason.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from asr.arguments import positive_int
from asr.models.registry import MODELS
from asr.report.leaderboard import write_leaderboard
from asr.shipped_configs import schedule_overrides
from asr.workflows.benchmark import DEFAULT_FINETUNE, BenchmarkPlan, run_benchmark


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="a prepared corpus (asr prepare --out)")
    parser.add_argument("--out", type=Path, default=Path("runs/benchmark"))
    parser.add_argument(
        "--models", nargs="*", default=list(MODELS), help="zero-shot models (default: all registered)"
    )
    parser.add_argument(
        "--finetune", nargs="*", default=list(DEFAULT_FINETUNE), metavar="MODEL:METHOD",
        help=f"fine-tunes (default: {' '.join(DEFAULT_FINETUNE)}); configs/MODEL-METHOD.yaml",
    )  # fmt: skip
    parser.add_argument("--overrides", nargs="*", default=[], metavar="KEY=VALUE", help="for every fine-tune")
    parser.add_argument(
        "--demo-schedule",
        action="store_true",
        help="the demo's short schedule (make demo) for every fine-tune",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--beam-size", type=positive_int, default=1)
    parser.add_argument(
        "--limit", type=positive_int, default=None, help="zero-shot on the first N utterances only"
    )
    parser.add_argument(
        "--baseline", default=None, help="row of the paired bootstrap (default: first zero-shot)"
    )
    parser.add_argument("--force", action="store_true", help="rerun stages whose settings changed")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    overrides = [*(schedule_overrides() if args.demo_schedule else []), *args.overrides]
    plan = BenchmarkPlan(
        data=args.data, out=args.out, models=args.models, finetune=args.finetune, overrides=overrides,
        split=args.split, device=args.device, beam_size=args.beam_size, limit=args.limit, force=args.force,
        progress=not args.no_progress, invoked_by=shlex.join(["asr", "benchmark", *sys.argv[1:]]),
    )  # fmt: skip
    stages = run_benchmark(plan)
    board = write_leaderboard(
        [s.folder for s in stages], args.out / "report", baseline=args.baseline, html=True
    )
    print((args.out / "report" / "results.md").read_text(encoding="utf-8"))
    for stage in stages:
        print(
            f"{stage.name}: {stage.status}{f' ({stage.reason.splitlines()[0][:120]})' if stage.reason else ''}"
        )
    print(f"leaderboard, plots: {args.out / 'report'}; {len(board.html)} HTML error reports")
    return 1 if any(s.status == "failed" for s in stages) else 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
