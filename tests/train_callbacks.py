"""Trainer callbacks the fine-tuning tests share."""

from __future__ import annotations

from transformers import TrainerCallback


class KillAfterSave(TrainerCallback):
    """Stands in for a killed job: interrupts the run right after the checkpoint of ``step`` is written."""

    def __init__(self, step: int):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt
