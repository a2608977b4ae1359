"""The runs the speech-LLM e2e tests share: ``asr evaluate`` of a manifest, a 2-step LoRA ``asr finetune``."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from asr.cli import main
from asr.data.manifest import read_manifest

CONFIGS = Path(__file__).resolve().parents[2] / "asr" / "configs"
# short, quiet and fast: 2 LoRA steps at batch 2, validation on 2 clips, no zero-shot or bootstrap
SETTINGS = "max_steps=2 eval_steps=2 save_steps=2 batch_size=2 eval_batch_size=2 grad_accum=1 eval_limit=2"
QUIET = "num_workers=0 bootstrap=0 zero_shot=false warmup_ratio=0 logging_steps=1 patience=null lora.r=4"


def finetune_two_steps(config: str, model: Path, data: Path, run: Path) -> dict[str, Any]:
    """``asr finetune --config configs/<config>`` for 2 steps into ``run``; its summary.json."""
    overrides = [f"model={model}", f"data={data}", f"output_dir={run}", *SETTINGS.split(), *QUIET.split()]
    assert main(["finetune", "--config", str(CONFIGS / config), *overrides]) == 0
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 2
    return summary


def train_texts(data: Path) -> list[str]:
    """The normalized training transcripts of a prepared corpus (a tiny model's vocabulary)."""
    return [u.text_norm for u in read_manifest(data / "manifests" / "train.jsonl")]


def evaluate_rows(model: Path, manifest: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    """``asr evaluate`` at batch 2 (no progress bar, no bootstrap); the rows of predictions.csv."""
    argv = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    assert main([*argv, "--batch-size", "2", "--no-progress", "--bootstrap", "0", *extra]) == 0
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
