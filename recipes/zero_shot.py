"""``asr zero-shot``: every registered model (or a chosen list) on one manifest, one metrics row each.

    asr zero-shot --manifest runs/demo/data/manifests/test.jsonl --out runs/zero-shot-test

A model that cannot be loaded (offline, missing extra) gets a row with its error
and the others still run; rerunning resumes each model's predictions.
"""

from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Any

from asr.arguments import positive_int
from asr.errors import ASRError
from asr.io import atomic_write, check_output_dir, write_text
from asr.models.registry import MODELS
from asr.run_records import CorpusMetrics
from asr.workflows.zero_shot import evaluate_model

log = logging.getLogger(__name__)

TABLE_COLUMNS = [
    "model",
    "cer",
    "cer_ci95",
    "substitutions",
    "deletions",
    "insertions",
    "ser",
    "wer",
    "rtf",
    "n_utterances",
    "error",
]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifest", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--models", nargs="+", default=list(MODELS), help="names or dirs (default: all registered)"
    )
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--limit", type=positive_int, default=None)
    parser.add_argument("--beam-size", type=positive_int, default=1)
    parser.add_argument(
        "--backend",
        default="auto",
        choices=["auto", "torch", "ct2"],
        help="as asr evaluate's (auto: Whisper on CPU ct2 int8 when installed, else torch)",
    )
    parser.add_argument("--no-progress", action="store_true")


def _row(name: str, metrics: CorpusMetrics | None, error: str = "") -> dict[str, Any]:
    values = metrics.to_json() if metrics else {}
    row = {c: values.get(c, "") for c in TABLE_COLUMNS}
    row.update(model=name, error=error)
    if metrics and metrics.cer_ci95:
        row["cer_ci95"] = "[{:.4f}, {:.4f}]".format(*metrics.cer_ci95)
    return row


def write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_write(out / "zero_shot.csv", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TABLE_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| model | CER | 95% CI | S | D | I | SER | RTF |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if r["error"]:
            lines.append(f"| {r['model']} | n/a ({r['error'].splitlines()[0][:60]}) | | | | | | |")
        else:
            rtf = f"{r['rtf']:.3f}" if isinstance(r["rtf"], float) else ""
            lines.append(
                f"| {r['model']} | {r['cer']:.4f} | {r['cer_ci95']} | {r['substitutions']} | "
                f"{r['deletions']} | {r['insertions']} | {r['ser']:.3f} | {rtf} |"
            )
    write_text(out / "zero_shot.md", "\n".join(lines) + "\n")


def run(args: argparse.Namespace) -> int:
    check_output_dir(args.out)
    rows = []
    for name in args.models:
        out = args.out / Path(name).name
        try:
            result = evaluate_model(
                name,
                args.manifest,
                out,
                device=args.device,
                limit=args.limit,
                beam_size=args.beam_size,
                progress=not args.no_progress,
                backend=args.backend,
            )
            rows.append(_row(name, result.record.metrics))
        except ASRError as err:
            log.error("%s: %s", name, err)
            rows.append(_row(name, None, str(err)))
    args.out.mkdir(parents=True, exist_ok=True)
    write_table(args.out, rows)
    print((args.out / "zero_shot.md").read_text(encoding="utf-8"))
    return 0 if any(not r["error"] for r in rows) else 2
