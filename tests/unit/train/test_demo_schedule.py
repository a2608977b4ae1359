"""The demo's fine-tuning schedule is package data (configs/schedules/demo.yaml), read as overrides."""

from __future__ import annotations

from asr.shipped_configs import CONFIG_DIR, DEMO_SCHEDULE, schedule_overrides
from asr.train.finetune_config import load_finetune_config

# recipes/demo.py's FINETUNE_OVERRIDES before the schedule moved to YAML: the demo's pinned CERs
# (README: zero-shot 0.8610, LoRA 0.4599) were measured with exactly these.
FORMER_OVERRIDES = [
    "lora.scope=decoder",
    "num_epochs=6",
    "batch_size=8",
    "eval_steps=20",
    "save_steps=20",
    "logging_steps=5",
    "patience=4",
    "num_workers=0",
]


def test_the_demo_schedule_gives_the_same_overrides_as_before() -> None:
    assert DEMO_SCHEDULE.is_file() and DEMO_SCHEDULE.is_relative_to(CONFIG_DIR)
    assert schedule_overrides() == FORMER_OVERRIDES


def test_the_demo_schedule_applies_to_the_demo_config() -> None:
    config = CONFIG_DIR / "whisper-base-lora.yaml"
    tuned = load_finetune_config(config, schedule_overrides())
    assert tuned == load_finetune_config(config, FORMER_OVERRIDES)
    assert (tuned.lora.scope, tuned.num_epochs, tuned.batch_size, tuned.patience) == ("decoder", 6, 8, 4)
