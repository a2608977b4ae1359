"""The whole fine-tuning procedure behind ``asr finetune``.

Checks (before any compute) -> load and configure the model -> Trainer with validation by CER,
early stopping and checkpoints -> ``best/`` -> test split (fine-tuned and zero-shot) -> summary.

Outputs in ``output_dir``: ``config.yaml``, ``checkpoint-N/``, ``best/``, ``train_log.jsonl``,
``tb/`` (TensorBoard), ``training_curve.png``, ``validation/step-N/``, ``test/``,
``metrics_test.json``, ``zero_shot/``, ``summary.json`` and, for CTC vocabularies,
``unknown_characters.json``.

Example::

    cfg = load_finetune_config("configs/whisper-base-lora.yaml", ["max_steps=200"])
    summary = finetune(cfg)               # or finetune(cfg, resume=True) after a kill
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asr.config import dump_yaml, read_yaml, to_dict
from asr.data.audio import audio_info
from asr.data.manifest import Utterance, read_manifest
from asr.errors import ConfigError, DataError
from asr.inference import EvalSettings, evaluate
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.runinfo import provenance, write_json
from asr.text.normalize import normalize
from asr.train.config import FinetuneConfig
from asr.train.dataset import SpeechCollator, SpeechDataset
from asr.train.reporting import TrainLog, TrainLogCallback, plot_training_curve, validation_cer_at

log = logging.getLogger(__name__)

# Used when a model has no registry learning rate for the method (Hub ids, unregistered dirs).
FALLBACK_LEARNING_RATE = {"lora": 1e-3, "full": 1e-5, "decoder": 1e-5}


@dataclass
class Splits:
    """Checked manifests; ``dropped`` are training clips longer than ``max_duration``."""

    train: list[Utterance]
    validation: list[Utterance]
    test: list[Utterance]
    dropped: list[Utterance]


# --- checks before any compute ------------------------------------------------
def check_model_reference(model: str) -> None:
    """A registered name, an existing directory or an ``org/name`` Hub id; else the known names."""
    from asr.models.registry import MODELS, unknown_model

    path = Path(model).expanduser()
    if path.is_dir() or model in MODELS:
        return
    if model.startswith((".", "/", "~")) or path.exists() or model.count("/") > 1:
        raise ConfigError(f"model: {model}: no such model directory")
    if "/" not in model:
        raise unknown_model(model)
    # org/name: a Hub id, fetched when the model is loaded


def _fill_durations(utts: list[Utterance]) -> None:
    for utt in utts:
        if utt.duration is None:
            utt.duration = audio_info(utt.audio).duration


def load_splits(cfg: FinetuneConfig) -> Splits:
    """Read and check the three manifests (files, audio, non-empty splits, durations)."""
    found: dict[str, list[Utterance]] = {}
    for split in ("train", "validation", "test"):
        path = cfg.manifest(split)
        if not path.is_file():
            raise DataError(
                f"{path}: {split} manifest not found (prepare the data with `asr prepare --out {cfg.data}` "
                f"or set {split}_manifest=PATH)"
            )
        utts = read_manifest(path)
        if not utts:
            raise DataError(f"{path}: the {split} split is empty")
        missing = [u.audio for u in utts if not Path(u.audio).is_file()]
        if missing:
            raise DataError(f"{path}: {len(missing)} audio files not found, e.g. {', '.join(missing[:3])}")
        found[split] = utts
    train = found["train"]
    _fill_durations(train)
    dropped: list[Utterance] = []
    if cfg.max_duration is not None:
        dropped = [u for u in train if (u.duration or 0.0) > cfg.max_duration]
        train = [u for u in train if (u.duration or 0.0) <= cfg.max_duration]
        if dropped:
            log.warning(
                "dropped %d training clips longer than max_duration=%.1fs (e.g. %s)",
                len(dropped),
                cfg.max_duration,
                ", ".join(u.id for u in dropped[:5]),
            )
        if not train:
            raise DataError(
                f"{cfg.manifest('train')}: all {len(dropped)} training clips are longer than "
                f"max_duration={cfg.max_duration}s"
            )
    validation = found["validation"][: cfg.eval_limit] if cfg.eval_limit else found["validation"]
    return Splits(train, validation, found["test"], dropped)


def _device_and_precision(cfg: FinetuneConfig) -> tuple[str, str]:
    cuda = torch.cuda.is_available()
    if cfg.device == "cuda" and not cuda:
        raise ConfigError("device=cuda but no CUDA GPU is visible")
    device = "cuda" if cfg.device == "cuda" or (cfg.device == "auto" and cuda) else "cpu"
    precision = cfg.precision
    if precision == "auto" and device == "cuda":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    elif precision == "auto":
        precision = "fp32"
    if precision in ("bf16", "fp16") and device != "cuda":
        raise ConfigError(f"precision={precision} needs a GPU; use precision=fp32 (or auto) on CPU")
    return device, precision


def _check_deepspeed(cfg: FinetuneConfig) -> None:
    if cfg.deepspeed is None:
        return
    if not Path(cfg.deepspeed).is_file():
        raise ConfigError(f"deepspeed: {cfg.deepspeed}: file not found (e.g. configs/deepspeed/zero2.json)")
    if importlib.util.find_spec("deepspeed") is None:
        raise ConfigError("deepspeed is not installed: pip install 'cs-mage-asr[deepspeed]'")


def check_vocabulary(asr_model: ASRModel, texts: list[str], out: Path | None) -> dict[str, int]:
    """Log (and write) characters the model cannot emit; error when no transcript has a known character."""
    unknown = asr_model.unknown_characters(texts)
    if not unknown:
        return {}
    normalized = [normalize(t) for t in texts]  # what the families check (punctuation is not scored)
    without_known = [t for t in normalized if not any(c not in unknown for c in t if not c.isspace())]
    with_unknown = sum(any(c in unknown for c in t) for t in normalized)
    ranked = dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0])))
    report = {
        "model": asr_model.spec.name,
        "n_transcripts": len(texts),
        "transcripts_with_unknown": with_unknown,
        "transcripts_without_known_characters": len(without_known),
        "unknown_occurrences": sum(unknown.values()),
        "characters": ranked,
    }
    if out is not None:
        write_json(out / "unknown_characters.json", report)
    top = ", ".join(f"{c!r}x{n}" for c, n in list(ranked.items())[:10])
    log.warning(
        "%d distinct characters (%d occurrences, in %d of %d transcripts) are not in the %s vocabulary: %s",
        len(unknown),
        report["unknown_occurrences"],
        with_unknown,
        len(texts),
        asr_model.spec.name,
        top,
    )
    if len(without_known) == len(texts):
        raise DataError(
            f"none of the {len(texts)} training transcripts contains a character the {asr_model.spec.name} "
            f"vocabulary knows (most frequent unknown: {top}); this model cannot learn these transcripts"
        )
    return unknown


# --- model set-up -------------------------------------------------------------
def configure_model(asr_model: ASRModel, cfg: FinetuneConfig) -> None:
    """Trainable parameters (method, LoRA), language, SpecAugment, gradient checkpointing."""
    if cfg.language:
        asr_model.spec = dataclasses.replace(asr_model.spec, language=cfg.language)
    lora = {"r": cfg.lora.r, "alpha": cfg.lora.alpha, "dropout": cfg.lora.dropout, "scope": cfg.lora.scope}
    if cfg.lora.targets:
        lora["targets"] = list(cfg.lora.targets)
    try:
        asr_model.set_trainable(cfg.method, lora if cfg.method == "lora" else None)
    except ValueError as err:  # e.g. peft: LoRA target modules not found
        hint = " (set lora.targets to module names of this model)" if cfg.method == "lora" else ""
        raise ConfigError(f"cannot set up method={cfg.method} on {cfg.model}: {err}{hint}") from err
    if not any(p.requires_grad for p in asr_model.module.parameters()):
        raise ConfigError(f"method={cfg.method} leaves no trainable parameter in {asr_model.spec.name}")
    if cfg.spec_augment and not asr_model.enable_spec_augment():
        log.warning(
            "spec_augment=true: the %s family has no SpecAugment switch; training without it",
            asr_model.family,
        )
    if cfg.gradient_checkpointing:
        module = asr_model.module
        # Non-reentrant checkpointing works with frozen inputs (LoRA) and with DDP's unused-parameter search.
        kwargs = {"use_reentrant": False}
        if hasattr(module, "activation_checkpointing_enable"):
            module.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        elif hasattr(module, "gradient_checkpointing_enable"):
            module.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        else:
            log.warning(
                "gradient_checkpointing=true: not supported by the %s family; ignored", asr_model.family
            )
            return
        if hasattr(module, "enable_input_require_grads"):
            module.enable_input_require_grads()


def parameter_counts(module: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters, each shared tensor counted once."""
    seen: set[int] = set()
    trainable = total = 0
    for p in module.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total


def _learning_rate(cfg: FinetuneConfig, asr_model: ASRModel) -> float:
    if cfg.learning_rate is not None:
        return cfg.learning_rate
    return float(asr_model.spec.learning_rate.get(cfg.method, FALLBACK_LEARNING_RATE[cfg.method]))


def _training_arguments(
    cfg: FinetuneConfig,
    out: Path,
    device: str,
    precision: str,
    batch_size: int,
    eval_batch_size: int,
    lr: float,
):
    from transformers import TrainingArguments

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


# --- outputs ------------------------------------------------------------------
def _resume_point(out: Path, resume: bool) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if last and not resume:
        raise ConfigError(
            f"{out} already holds checkpoints ({Path(last).name}): pass --resume to continue that run, "
            "or choose another output_dir"
        )
    if resume and last is None:
        log.warning("--resume: no checkpoint in %s; starting from the beginning", out)
    return last


def _warn_config_changes(path: Path, resolved: dict[str, Any]) -> None:
    if not path.is_file():
        return
    before = read_yaml(path)
    changed = sorted(k for k in resolved.keys() | before.keys() if before.get(k) != resolved.get(k))
    if changed:
        log.warning("resuming with a changed config: %s", ", ".join(changed))


def _rescore(predictions: Path, n_bootstrap: int):
    from asr.metrics import read_predictions, score

    rows = read_predictions(predictions)
    return score(
        [r["id"] for r in rows],
        [r["reference"] for r in rows],
        [r["prediction"] for r in rows],
        n_bootstrap=n_bootstrap,
    )


def _headline(metrics: dict[str, Any]) -> dict[str, Any]:
    keys = ("cer", "cer_ci95", "ser", "wer", "n_utterances", "rtf")
    return {k: metrics.get(k) for k in keys}


def _evaluate_split(
    model: ASRModel, utts: list[Utterance], out: Path, settings: EvalSettings, resume: bool, extra: dict
) -> dict[str, Any]:
    if out.exists() and not resume:
        shutil.rmtree(out)
    return evaluate(
        model, utts, out, settings, resume=resume and (out / "predictions.csv").exists(), extra=extra
    )


# --- the procedure ------------------------------------------------------------
def finetune(cfg: FinetuneConfig, resume: bool = False, callbacks: list | None = None) -> dict[str, Any]:
    """Run one fine-tuning job; returns summary.json's content (``{}`` on non-main processes)."""
    from transformers import EarlyStoppingCallback, set_seed
    from transformers.integrations import TensorBoardCallback

    from asr.models import load_model
    from asr.train.trainer import ASRTrainer, FinalStepCallback, LossModule

    started = time.time()
    out = cfg.resolved_output_dir()
    check_model_reference(cfg.model)
    splits = load_splits(cfg)
    device, precision = _device_and_precision(cfg)
    _check_deepspeed(cfg)
    checkpoint = _resume_point(out, resume)

    set_seed(cfg.seed)  # before the model is built: LoRA initialisation draws from the RNG
    asr_model = load_model(cfg.model, device="cpu", dtype="fp32")
    batch_size = cfg.batch_size or asr_model.spec.train_batch_size
    eval_batch_size = cfg.eval_batch_size or asr_model.spec.eval_batch_size
    lr = _learning_rate(cfg, asr_model)
    args = _training_arguments(cfg, out, device, precision, batch_size, eval_batch_size, lr)
    main = args.process_index == 0
    train_data = SpeechDataset(splits.train, cfg.text_field)
    check_vocabulary(asr_model, train_data.texts(), out if main else None)
    configure_model(asr_model, cfg)
    trainable, total = parameter_counts(asr_model.module)
    log.info(
        "%s (%s): %d of %d parameters train (%.2f%%)",
        cfg.model,
        cfg.method,
        trainable,
        total,
        100 * trainable / total,
    )

    resolved = dataclasses.replace(
        cfg,
        output_dir=str(out),
        batch_size=batch_size,
        eval_batch_size=eval_batch_size,
        learning_rate=lr,
        language=asr_model.spec.language,
    )
    train_log = TrainLog(out / "train_log.jsonl")
    if main:
        if checkpoint:
            _warn_config_changes(out / "config.yaml", to_dict(resolved))
            train_log.truncate(int(Path(checkpoint).name.rsplit("-", 1)[-1]))
        elif train_log.path.exists():  # a run that died before its first checkpoint
            train_log.path.unlink()
        dump_yaml(
            resolved,
            out / "config.yaml",
            header=f"resolved config of this run; rerun with:\nasr finetune --config {out / 'config.yaml'}",
        )

    decode = DecodeOptions(
        beam_size=asr_model.spec.beam_size, language=asr_model.spec.language, task=asr_model.spec.task
    )
    val_settings = EvalSettings(batch_size=eval_batch_size, decode=decode, n_bootstrap=0, progress=False)
    asr_model.to(args.device)
    trainer_callbacks: list = [TrainLogCallback(train_log, out / "training_curve.png"), FinalStepCallback()]
    if cfg.patience:
        trainer_callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.patience))
    if "tensorboard" in cfg.report_to:
        tensorboard = TensorBoardCallback()
        tensorboard.logging_dir = str(out / "tb")
        trainer_callbacks.append(tensorboard)
    trainer = ASRTrainer(
        model=LossModule(asr_model),
        args=args,
        data_collator=SpeechCollator(asr_model, cfg.speed_perturb, cfg.seed),
        train_dataset=train_data,
        eval_dataset=SpeechDataset(splits.validation, cfg.text_field),
        callbacks=trainer_callbacks + list(callbacks or []),
        asr_model=asr_model,
        validation=splits.validation,
        eval_settings=val_settings,
        lengths=train_data.lengths,
    )
    train_output = trainer.train(resume_from_checkpoint=checkpoint)
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return {}

    state = trainer.state
    best_checkpoint = state.best_model_checkpoint
    best_step = int(Path(best_checkpoint).name.rsplit("-", 1)[-1]) if best_checkpoint else state.global_step
    records = train_log.records()
    best_dir = out / "best"
    if best_dir.exists():
        shutil.rmtree(best_dir)
    asr_model.save(best_dir)
    log.info("best checkpoint: step %d -> %s", best_step, best_dir)

    test_settings = EvalSettings(
        batch_size=eval_batch_size, decode=decode, n_bootstrap=cfg.bootstrap, progress=False
    )
    asr_model.module.eval()
    test_metrics = _evaluate_split(
        asr_model,
        splits.test,
        out / "test",
        test_settings,
        resume=False,
        extra={"split": "test", "checkpoint": str(best_dir), "best_step": best_step},
    )
    write_json(out / "metrics_test.json", test_metrics)
    fine_tuned = _rescore(out / "test" / "predictions.csv", cfg.bootstrap)

    zero_shot: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None
    if cfg.zero_shot:
        del trainer  # optimizer state and gradients go before a second model is loaded
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        base = load_model(cfg.model, device=str(args.device), dtype="fp32")
        if cfg.language:
            base.spec = dataclasses.replace(base.spec, language=cfg.language)
        zs_metrics = _evaluate_split(
            base,
            splits.test,
            out / "zero_shot",
            test_settings,
            resume=resume,
            extra={"split": "test", "zero_shot": True},
        )
        zero_shot = _headline(zs_metrics)
        from asr.metrics import paired_bootstrap

        comparison = paired_bootstrap(
            _rescore(out / "zero_shot" / "predictions.csv", cfg.bootstrap),
            fine_tuned,
            n_bootstrap=cfg.bootstrap,
            labels=("zero_shot", "fine_tuned"),
        )

    plot_training_curve(records, out / "training_curve.png", title=f"{cfg.model} ({cfg.method})")
    summary = {
        "model": cfg.model,
        "family": asr_model.family,
        "method": cfg.method,
        "output_dir": str(out),
        "best_dir": str(best_dir),
        "best_checkpoint": best_checkpoint,
        "best_step": best_step,
        "best_validation_cer": validation_cer_at(records, best_step),
        "start_validation_cer": validation_cer_at(records, 0),
        "global_step": state.global_step,
        "max_steps": state.max_steps,
        "stopped_early": state.global_step < state.max_steps,
        "test": {"fine_tuned": _headline(test_metrics), "zero_shot": zero_shot, "comparison": comparison},
        "trainable_parameters": trainable,
        "total_parameters": total,
        "train_utterances": len(splits.train),
        "train_hours": round(sum(u.duration or 0.0 for u in splits.train) / 3600, 4),
        "dropped_longer_than_max_duration": len(splits.dropped),
        "validation_utterances": len(splits.validation),
        "test_utterances": len(splits.test),
        "learning_rate": lr,
        "effective_batch_size": batch_size * cfg.grad_accum * args.world_size,
        "world_size": args.world_size,
        "device": str(args.device),
        "precision": precision,
        "decoding": decode.as_dict(),
        "eval_batch_size": eval_batch_size,
        "train_runtime_seconds": train_output.metrics.get("train_runtime"),
        "wall_seconds": round(time.time() - started, 1),
        "provenance": provenance(),
        "config": to_dict(resolved),
    }
    write_json(out / "summary.json", summary)
    log.info("summary: %s", json.dumps(summary["test"], ensure_ascii=False, default=str))
    return summary
