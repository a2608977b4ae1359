"""The transformers ``TrainingArguments`` of a fine-tuning run, from its config."""

from __future__ import annotations

import os
from pathlib import Path

from transformers import TrainingArguments

from asr.train.finetune_config import FinetuneConfig


def training_arguments(
    cfg: FinetuneConfig,
    out: Path,
    device: str,
    precision: str,
    batch_size: int,
    eval_batch_size: int,
    lr: float,
) -> TrainingArguments:
    """Validation by CER every ``eval_steps``, checkpoints, best model at the end, seeds, precision."""
    return TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=eval_batch_size,
        gradient_accumulation_steps=cfg.grad_accum,
        learning_rate=lr,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        max_steps=cfg.max_steps or -1,
        num_train_epochs=cfg.num_epochs,
        eval_strategy="steps",
        eval_steps=cfg.eval_steps,
        eval_on_start=cfg.eval_on_start,
        save_strategy="steps",
        save_steps=cfg.save_every,
        save_total_limit=cfg.save_total_limit,
        load_best_model_at_end=True,
        metric_for_best_model="cer",
        greater_is_better=False,
        logging_steps=cfg.logging_steps,
        report_to=[r for r in cfg.report_to if r != "tensorboard"] or "none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=precision == "bf16",
        fp16=precision == "fp16",
        dataloader_num_workers=cfg.num_workers,
        remove_unused_columns=False,
        deepspeed=cfg.deepspeed,
        # explicit gloo only for a launched CPU job: a backend in a single process would ask for a process group
        ddp_backend="gloo" if device == "cpu" and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        use_cpu=device == "cpu",
    )
