"""``asr finetune``: fine-tune a model from a YAML config plus ``key=value`` overrides.

asr finetune --config configs/whisper-base-lora.yaml data=runs/demo/data output_dir=runs/wb-lora max_steps=200
asr finetune --config configs/whisper-base-lora.yaml output_dir=runs/wb-lora --resume
torchrun --nproc_per_node 2 -m asr.cli finetune --config configs/whisper-small-full.yaml   # several GPUs
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.report.html import write_run_reports
from asr.train.finetune_config import load_finetune_config
from asr.train.recipe import finetune


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", type=Path, default=None, help="YAML config (configs/<model>-<method>.yaml)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in output_dir"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="config overrides, e.g. max_steps=200 learning_rate=1e-4 lora.r=16 speed_perturb=[0.9,1.0,1.1]",
    )


def run(args: argparse.Namespace) -> int:
    cfg = load_finetune_config(args.config, args.overrides)
    summary = finetune(cfg, resume=args.resume)
    if summary:  # None on the other processes of a distributed run
        write_run_reports(Path(summary.output_dir))
        test = summary.test
        print(
            json.dumps(
                {
                    "best": summary.best_dir,
                    "best_step": summary.best_step,
                    "best_validation_cer": summary.best_validation_cer,
                    "test_cer": test.fine_tuned["cer"],
                    "zero_shot_test_cer": (test.zero_shot or {}).get("cer"),
                },
                ensure_ascii=False,
            )
        )
    return 0
