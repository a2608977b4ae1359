"""The transformers ``Trainer`` specialised for :class:`~asr.models.base.ASRModel`.

- the loss is ``asr_model.loss(batch)``, run through :class:`LossModule` so that DDP and
  DeepSpeed wrap a module whose forward *is* that loss (gradient sync needs the wrapped
  forward to run);
- the train sampler is transformers' length-grouped sampler over durations, reseeded per epoch;
- ``evaluate()`` decodes the validation manifest with :func:`asr.inference.evaluate` (the one
  inference path), under autocast in the training precision on CUDA, and returns
  ``eval_cer``/``eval_ser``/``eval_wer``; in distributed runs every rank decodes its slice and
  rank 0 merges and scores once (:mod:`asr.train.validation`), an error on any rank raised on all;
- checkpoints hold what the family's own module saves (a LoRA adapter, or full weights);
- a step whose loss or gradient norm is NaN or infinite is skipped: its gradients are dropped
  before the optimizer step (so the optimizer leaves every weight alone), a warning names the
  step and its utterances, and after more than ``max_nonfinite_steps`` such steps the run
  stops with a :class:`~asr.train.faults.TrainingError`. Under fp16 a gradient overflow with
  a finite loss is left to the loss scaler (it skips the step and lowers the scale); under
  DeepSpeed the engine steps inside the backward pass, so such steps are counted and stop the
  run but are not skipped;
- a checkpoint that cannot be written (a full disk) is removed and the run stops with a
  :class:`~asr.train.faults.TrainingError` naming the folder; the previous checkpoints stay.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel
from safetensors.torch import save_file, save_model
from transformers import PreTrainedModel, Trainer, TrainerCallback
from transformers.trainer import TRAINING_ARGS_NAME
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from transformers.utils import SAFE_WEIGHTS_NAME

from asr.data.manifest import Utterance
from asr.disk import free_space, write_failure
from asr.errors import TrainingError
from asr.inference import EvalSettings, evaluate
from asr.models.base import ASRModel
from asr.run_dir import RunDir
from asr.train.dataset import EpochLengthGroupedSampler
from asr.train.validation import (
    decode_autocast,
    describe_error,
    distributed,
    merge_shards,
    raise_if_any_failed,
    shard,
    shard_dir,
)

log = logging.getLogger(__name__)


class LossModule(torch.nn.Module):
    """``forward(**batch) -> {"loss": asr_model.loss(batch)}``; ``net`` is the family's module."""

    def __init__(self, asr_model: ASRModel):
        super().__init__()
        self.net = asr_model.module
        self.asr_model = asr_model  # not an nn.Module: not registered, not in the state dict

    def forward(self, **batch: Any) -> dict[str, torch.Tensor]:
        return {"loss": self.asr_model.loss(batch)}


class FinalStepCallback(TrainerCallback):
    """Validate and save at the last step too, so the final weights are always a candidate for best."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_evaluate = True
            control.should_save = True
        return control


class ASRTrainer(Trainer):
    """Trainer whose model is a :class:`LossModule`; see the module docstring."""

    # asr_model.loss returns a per-batch mean: let Trainer divide by the accumulation steps.
    loss_is_scaled_for_ga = False

    def __init__(
        self,
        *,
        asr_model: ASRModel,
        validation: list[Utterance],
        eval_settings: EvalSettings,
        lengths: list[float],
        max_nonfinite_steps: int = 10,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.asr_model = asr_model
        self.validation = validation
        self.eval_settings = eval_settings
        self.lengths = lengths
        self.model_accepts_loss_kwargs = False  # LossModule.forward takes **batch, not loss kwargs
        self.max_nonfinite_steps = max_nonfinite_steps
        self.nonfinite_steps = 0  # skipped steps in this process's run (not carried over a resume)
        self._window_keys: list[str] = []  # utterances of the micro-batches of the current step
        self._window_bad_keys: list[str] = []  # those of them whose loss was not finite
        self._window_loss_finite = True

    # --- training ---------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochLengthGroupedSampler(
            self.lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps, seed
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    # --- non-finite steps -------------------------------------------------
    def training_step(self, model, inputs, num_items_in_batch=None) -> torch.Tensor:
        keys = [str(k) for k in inputs.get("keys") or ()]
        loss = super().training_step(model, inputs, num_items_in_batch)
        self._window_keys.extend(keys)
        if not bool(torch.isfinite(loss).all()):
            self._window_loss_finite = False
            self._window_bad_keys.extend(keys)
        return loss

    def _get_grad_norm(self, model, grad_norm=None):
        # The Trainer calls this once per optimizer step, after clipping and right before
        # optimizer.step(): the last point where the step can still be skipped.
        grad_norm = super()._get_grad_norm(model, grad_norm=grad_norm)
        try:
            self._guard_step(model, grad_norm)
        finally:
            self._window_keys, self._window_bad_keys, self._window_loss_finite = [], [], True
        return grad_norm

    def _guard_step(self, model: torch.nn.Module, grad_norm: Any) -> None:
        """Skip (and count) a step whose loss or gradient norm is not finite; stop past the limit."""
        norm = float(grad_norm) if grad_norm is not None else 0.0
        loss_finite, norm_finite = self._window_loss_finite, math.isfinite(norm)
        if self.accelerator.scaler is not None:
            norm_finite = True  # fp16: an overflow is the loss scaler's to skip (and to lower the scale)
        bad = torch.tensor(0.0 if loss_finite and norm_finite else 1.0, device=self.args.device)
        if (
            self.args.world_size > 1
            and torch.distributed.is_available()
            and torch.distributed.is_initialized()
        ):
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)  # every rank skips alike
        if not bool(bad.item()):
            return
        if not self.is_deepspeed_enabled:
            # No gradient: torch optimizers leave such a parameter (and its moments) untouched.
            model.zero_grad(set_to_none=True)
        self.nonfinite_steps += 1
        step = self.state.global_step + 1
        if not loss_finite:
            what = "loss"
        elif not norm_finite:
            what = "gradient norm"
        else:
            what = "loss or gradient norm (on another process)"
        keys = self._window_bad_keys or self._window_keys
        shown = ", ".join(keys[:10]) + (f" and {len(keys) - 10} more" if len(keys) > 10 else "")
        utterances = f" (utterances: {shown})" if keys else ""
        skipped = "counted (DeepSpeed has already stepped)" if self.is_deepspeed_enabled else "skipped"
        log.warning(
            "step %d: non-finite %s (grad norm %s)%s; optimizer step %s (%d such steps so far, max_nonfinite_steps=%d)",
            step,
            what,
            norm,
            utterances,
            skipped,
            self.nonfinite_steps,
            self.max_nonfinite_steps,
        )
        if self.nonfinite_steps > self.max_nonfinite_steps:
            raise TrainingError(
                f"training stopped at step {step}: {self.nonfinite_steps} steps had a non-finite (NaN or "
                f"infinite) loss or gradient norm, more than max_nonfinite_steps={self.max_nonfinite_steps}; "
                f"the last one: non-finite {what}{utterances}. Check those clips for broken audio or "
                "transcripts, or lower learning_rate (or train in fp32)"
            )

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.nonfinite_steps and "loss" in logs:
            logs = {**logs, "nonfinite_steps": self.nonfinite_steps}
        super().log(logs, start_time)

    # --- validation -------------------------------------------------------
    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        metrics = self._validate(metric_key_prefix)  # on every rank: each decodes its slice
        self.log(dict(metrics))
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    @property
    def precision(self) -> str:
        """The training precision: ``bf16``, ``fp16`` or ``fp32``."""
        return "bf16" if self.args.bf16 else "fp16" if self.args.fp16 else "fp32"

    def _validate(self, prefix: str) -> dict[str, float]:
        step = self.state.global_step
        out = RunDir(self.args.output_dir).validation(step).path
        was_training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        try:
            if self.args.world_size > 1 and distributed():
                result = self._validate_sharded(out, step, prefix, start)
            else:
                if out.exists():  # left by a run killed after validating, before its checkpoint
                    shutil.rmtree(out)
                with torch.no_grad(), decode_autocast(self.args.device, self.precision):
                    record = evaluate(
                        self.asr_model,
                        self.validation,
                        out,
                        self.eval_settings,
                        split="validation",
                        step=step,
                    ).record
                result = _validation_metrics(record.metrics, prefix, start)
        finally:
            self.model.train(was_training)
        if self.is_world_process_zero():
            log.info("step %d: validation CER %.4f (%s)", step, result[f"{prefix}_cer"], out)
        return result

    def _validate_sharded(self, out: Path, step: int, prefix: str, start: float) -> dict[str, float]:
        """Each rank decodes its slice into ``out/rank-R/``; rank 0 merges and scores once.

        An error on any rank is raised on every rank (none is left waiting in a collective).
        """
        rank, world = self.args.process_index, self.args.world_size
        mine = shard_dir(out, rank)
        error: str | None = None
        cause: BaseException | None = None
        try:
            if mine.exists():  # left by a run killed after validating, before its checkpoint
                shutil.rmtree(mine)
            part = shard(self.validation, rank, world)
            if part:  # fewer clips than ranks: some ranks have none
                with torch.no_grad(), decode_autocast(self.args.device, self.precision):
                    evaluate(self.asr_model, part, mine, self.eval_settings, split="validation", step=step)
        except Exception as err:
            error, cause = describe_error(err, rank), err
        raise_if_any_failed(error, f"validation at step {step}", cause)
        box: list[Any] = [None]
        if rank == 0:
            try:
                merged = merge_shards(
                    self.asr_model,
                    self.validation,
                    [shard_dir(out, r) for r in range(world)],
                    out,
                    self.eval_settings,
                    split="validation",
                    step=step,
                )
                box = [_validation_metrics(merged.record.metrics, prefix, start)]
                for folder in out.glob("rank-*"):
                    shutil.rmtree(folder, ignore_errors=True)
            except Exception as err:
                error, cause = describe_error(err, rank), err
        raise_if_any_failed(error, f"validation at step {step} (merging the ranks' predictions)", cause)
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    # --- checkpoints: save and load the family's module, not the wrapper --
    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        folder = Path(self._get_output_dir(trial=trial)) / f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        try:
            super()._save_checkpoint(model, trial)
        except Exception as err:
            reason = write_failure(err)
            if reason is None:
                raise
            if self.args.should_save:
                shutil.rmtree(folder, ignore_errors=True)  # half written: resume must not pick it
            raise TrainingError(
                f"cannot write the checkpoint {folder}: {reason} ({free_space(folder.parent)}); the "
                "previous checkpoints are kept: free some space, then rerun with --resume"
            ) from err

    @contextmanager
    def _family_module_as_model(self) -> Iterator[None]:
        outer = self.model
        self.model = outer.net
        try:
            yield
        finally:
            self.model = outer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if state_dict is not None:  # DeepSpeed/FSDP hand over the wrapper's full state dict
            state_dict = {k.removeprefix("net."): v for k, v in state_dict.items()}
        net = self.model.net
        if isinstance(net, (PreTrainedModel, PeftModel)):
            with self._family_module_as_model():
                super()._save(output_dir, state_dict=state_dict)
            return
        if not self.args.should_save:
            return
        output_dir = output_dir or self.args.output_dir
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, SAFE_WEIGHTS_NAME)
        if state_dict is None:
            save_model(net, path, metadata={"format": "pt"})  # drops aliases of shared (tied) tensors
        else:
            save_file({k: v.contiguous() for k, v in state_dict.items()}, path, metadata={"format": "pt"})
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _load_from_checkpoint(
        self, resume_from_checkpoint: str, model: torch.nn.Module | None = None
    ) -> None:
        if model is None or model is self.model:
            model = self.model.net
        super()._load_from_checkpoint(resume_from_checkpoint, model=model)

    def _issue_warnings_after_load(self, load_result: Any) -> None:
        # Tied weights (e.g. an output projection tied to the token embedding) are saved once: not missing.
        net = self.model.net if isinstance(self.model, LossModule) else self.model
        state = net.state_dict()
        missing = set(load_result.missing_keys)
        loaded = {state[k].data_ptr() for k in state.keys() - missing}
        really_missing = sorted(k for k in missing if k not in state or state[k].data_ptr() not in loaded)
        if really_missing:
            log.warning("missing keys in the loaded checkpoint: %s", really_missing)
        if load_result.unexpected_keys:
            log.warning("unexpected keys in the loaded checkpoint: %s", load_result.unexpected_keys)

    def _load_best_model(self) -> None:
        if self.is_deepspeed_enabled:  # DeepSpeed reloads its own engine checkpoint (wrapper keys)
            super()._load_best_model()
            return
        with self._family_module_as_model():
            super()._load_best_model()


def _validation_metrics(metrics: Any, prefix: str, start: float) -> dict[str, float]:
    """``eval_cer``/``eval_ser``(/``eval_wer``) and the runtime, from a validation's corpus metrics."""
    result = {
        f"{prefix}_cer": float(metrics.cer),
        f"{prefix}_ser": float(metrics.ser),
        f"{prefix}_runtime": round(time.perf_counter() - start, 3),
    }
    if metrics.wer is not None:
        result[f"{prefix}_wer"] = float(metrics.wer)
    return result
