"""The 2-step LoRA fine-tuning run the speech-LLM e2e tests share (tiny model, few clips)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asr.cli import main

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
