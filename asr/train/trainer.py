"""The transformers ``Trainer`` specialised for :class:`~asr.models.base.ASRModel`.

- the loss is ``asr_model.loss(batch)``, run through :class:`LossModule` so that DDP and
  DeepSpeed wrap a module whose forward *is* that loss (gradient sync needs the wrapped
  forward to run);
- the train sampler is transformers' length-grouped sampler over durations, reseeded per epoch;
- ``evaluate()`` decodes the validation manifest with :func:`asr.inference.evaluate` (the one
  inference path) and returns ``eval_cer``/``eval_ser``/``eval_wer``; in distributed runs the
  main process decodes and broadcasts the metrics;
- checkpoints hold what the family's own module saves (a LoRA adapter, or full weights).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from asr.data.manifest import Utterance
from asr.inference import EvalSettings, evaluate
from asr.models.base import ASRModel
from asr.train.dataset import EpochLengthGroupedSampler

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
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.asr_model = asr_model
        self.validation = validation
        self.eval_settings = eval_settings
        self.lengths = lengths
        self.model_accepts_loss_kwargs = False  # LossModule.forward takes **batch, not loss kwargs

    # --- training ---------------------------------------------------------
    def _get_train_sampler(self, train_dataset=None) -> torch.utils.data.Sampler:
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        return EpochLengthGroupedSampler(
            self.lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps, seed
        )

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        outputs = model(**inputs)
        return (outputs["loss"], outputs) if return_outputs else outputs["loss"]

    # --- validation -------------------------------------------------------
    def evaluate(
        self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval"
    ) -> dict[str, float]:
        metrics = self._validate(metric_key_prefix) if self.is_world_process_zero() else None
        if (
            self.args.world_size > 1
            and torch.distributed.is_available()
            and torch.distributed.is_initialized()
        ):
            box = [metrics]
            torch.distributed.broadcast_object_list(box, src=0)
            metrics = box[0]
        assert metrics is not None
        self.log(dict(metrics))
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    def _validate(self, prefix: str) -> dict[str, float]:
        step = self.state.global_step
        out = Path(self.args.output_dir) / "validation" / f"step-{step}"
        if out.exists():  # left by a run killed after validating, before its checkpoint
            shutil.rmtree(out)
        was_training = self.model.training
        self.model.eval()
        start = time.perf_counter()
        try:
            with torch.no_grad():
                metrics = evaluate(
                    self.asr_model,
                    self.validation,
                    out,
                    self.eval_settings,
                    extra={"split": "validation", "step": step},
                )
        finally:
            self.model.train(was_training)
        result = {
            f"{prefix}_cer": float(metrics["cer"]),
            f"{prefix}_ser": float(metrics["ser"]),
            f"{prefix}_runtime": round(time.perf_counter() - start, 3),
        }
        if metrics.get("wer") is not None:
            result[f"{prefix}_wer"] = float(metrics["wer"])
        log.info("step %d: validation CER %.4f (%s)", step, result[f"{prefix}_cer"], out)
        return result

    # --- checkpoints: save and load the family's module, not the wrapper --
    @contextmanager
    def _family_module_as_model(self) -> Iterator[None]:
        outer = self.model
        self.model = outer.net
        try:
            yield
        finally:
            self.model = outer

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        from peft import PeftModel
        from transformers import PreTrainedModel

        if state_dict is not None:  # DeepSpeed/FSDP hand over the wrapper's full state dict
            state_dict = {k.removeprefix("net."): v for k, v in state_dict.items()}
        net = self.model.net
        if isinstance(net, (PreTrainedModel, PeftModel)):
            with self._family_module_as_model():
                super()._save(output_dir, state_dict=state_dict)
            return
        if not self.args.should_save:
            return
        from safetensors.torch import save_file, save_model
        from transformers.trainer import TRAINING_ARGS_NAME
        from transformers.utils import SAFE_WEIGHTS_NAME

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
        # Tied weights (e.g. Whisper's proj_out = embed_tokens) are saved once: not missing.
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
