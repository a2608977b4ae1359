"""Fine-tuning as a recipe (in the style of torchtune's single-device LoRA recipe).

- :meth:`FinetuneRecipe.setup`: checks before any compute (model reference, manifests,
  device and precision, DeepSpeed, resume point), then the model (loaded, vocabulary
  checked, trainable parameters set), the resolved ``config.yaml`` and the Trainer;
- :meth:`FinetuneRecipe.train`: the Trainer run (validation by CER, early stopping,
  checkpoints), then the best weights, checked finite, into the staging folder ``.best.staging/``;
- :meth:`FinetuneRecipe.report`: the test split, fine-tuned and zero-shot, their paired
  bootstrap, the training curve, then ``best/`` (the staged weights renamed into place, so a
  failed run never leaves a half-written ``best/`` nor replaces an earlier one) and, last,
  ``summary.json``.

Outputs in ``output_dir``: ``config.yaml``, ``checkpoint-N/``, ``best/``, ``train_log.jsonl``,
``tb/`` (TensorBoard), ``training_curve.png``, ``validation/step-N/``, ``test/``,
``metrics_test.json``, ``zero_shot/``, ``summary.json`` and, for CTC vocabularies,
``unknown_characters.json``.

Example (runs a training job, so not a doctest)::

    cfg = load_finetune_config("configs/my-model-lora.yaml", ["max_steps=200"])
    summary = finetune(cfg)               # or finetune(cfg, resume=True) after a kill
    print(summary.best_step, summary.test.fine_tuned["cer"])
"""

from __future__ import annotations

import dataclasses
import errno
import gc
import json
import logging
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import EarlyStoppingCallback, set_seed
from transformers.integrations import TensorBoardCallback

from asr.data.corpus_info import corpus_summary
from asr.data.manifest import Utterance
from asr.disk import free_space, write_failure
from asr.errors import TrainingError
from asr.inference import EvalResult, EvalSettings, evaluate
from asr.io import check_output_dir
from asr.metrics import paired_bootstrap
from asr.models import load_model
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.output_lock import output_lock
from asr.provenance import provenance
from asr.run_dir import PREDICTIONS_FILE, RunDir, checkpoint_step
from asr.run_records import FinetuneSummary, TestComparison
from asr.train.dataset import SpeechCollator, SpeechDataset
from asr.train.faults import non_finite_tensors
from asr.train.finetune_config import FinetuneConfig
from asr.train.model_setup import apply_language, configure_model, learning_rate, parameter_counts
from asr.train.preflight import (
    check_deepspeed,
    check_model_options,
    check_model_reference,
    check_vocabulary,
    device_and_precision,
)
from asr.train.reporting import TrainLog, TrainLogCallback, plot_training_curve, validation_cer_at
from asr.train.resume import prepare_run_dir, resume_point
from asr.train.splits import Splits, load_splits
from asr.train.trainer import ASRTrainer, FinalStepCallback, LossModule
from asr.train.training_args import training_arguments
from asr.train.validation import decode_autocast
from asr.typed_config import to_dict

if TYPE_CHECKING:
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from transformers.trainer_utils import TrainOutput

log = logging.getLogger(__name__)


class FinetuneRecipe:
    """One fine-tuning run: :meth:`setup`, :meth:`train`, :meth:`report` (see the module docstring)."""

    # set by setup()
    started: float
    splits: Splits
    device: str
    precision: str
    checkpoint: str | None
    asr_model: ASRModel
    batch_size: int
    eval_batch_size: int
    lr: float
    args: TrainingArguments
    train_data: SpeechDataset
    trainable: int
    total: int
    resolved: FinetuneConfig
    decode: DecodeOptions
    train_log: TrainLog
    trainer: Trainer | None
    # set by train()
    train_output: TrainOutput
    best_step: int

    def __init__(
        self, cfg: FinetuneConfig, resume: bool = False, callbacks: Sequence[TrainerCallback] = ()
    ) -> None:
        self.cfg = cfg
        self.resume = resume
        self.callbacks = list(callbacks)
        self.out = cfg.resolved_output_dir()
        self.run_dir = RunDir(self.out)
        self.best_dir = self.run_dir.best_dir
        self.staged_best = self.out / ".best.staging"  # best/ until the run has succeeded

    # --- setup ------------------------------------------------------------
    def setup(self) -> None:
        """Checks before any compute, then the model, the resolved ``config.yaml`` and the Trainer."""
        self.started = time.time()
        check_model_reference(self.cfg.model)
        check_model_options(self.cfg)
        self.splits = load_splits(self.cfg)
        self.device, self.precision = device_and_precision(self.cfg)
        check_deepspeed(self.cfg)
        check_output_dir(self.out, what="output_dir")  # a read-only folder or a file: before the model loads
        self.checkpoint = resume_point(self.out, self.resume)
        self._setup_model()
        self.resolved = dataclasses.replace(
            self.cfg,
            output_dir=str(self.out),
            batch_size=self.batch_size,
            eval_batch_size=self.eval_batch_size,
            learning_rate=self.lr,
            language=self.asr_model.spec.language,
            model_options=self.model_options,
        )
        self.train_log = TrainLog(self.run_dir.train_log_file)
        if self.is_main:
            prepare_run_dir(self.out, self.resolved, self.checkpoint, self.train_log)
        self.trainer = self._build_trainer()

    @property
    def is_main(self) -> bool:
        """True on the process that writes the run's files (rank 0)."""
        return self.args.process_index == 0

    def _setup_model(self) -> None:
        """Seeded load on CPU, batch sizes, learning rate, arguments, vocabulary check, trainable parameters."""
        cfg = self.cfg
        set_seed(cfg.seed)  # before the model is built: LoRA initialisation draws from the RNG
        model = self.asr_model = load_model(cfg.model, device="cpu", dtype="fp32")
        self.batch_size = cfg.batch_size or model.spec.train_batch_size
        self.eval_batch_size = cfg.eval_batch_size or model.spec.eval_batch_size
        self.lr = learning_rate(cfg, model)
        self.args = training_arguments(
            cfg, self.out, self.device, self.precision, self.batch_size, self.eval_batch_size, self.lr
        )
        self.train_data = SpeechDataset(self.splits.train, cfg.text_field)
        check_vocabulary(model, self.train_data.texts(), self.out if self.is_main else None)
        self.model_options = to_dict(configure_model(model, cfg))
        self.trainable, self.total = parameter_counts(model.module)
        log.info(
            "%s (%s): %d of %d parameters train (%.2f%%)",
            cfg.model,
            cfg.method,
            self.trainable,
            self.total,
            100 * self.trainable / self.total,
        )

    def _build_trainer(self) -> Trainer:
        spec = self.asr_model.spec
        self.decode = self.asr_model.decode_options(
            DecodeOptions(beam_size=spec.beam_size, language=spec.language)
        )
        self.asr_model.to(self.args.device)
        return ASRTrainer(
            model=LossModule(self.asr_model),
            args=self.args,
            data_collator=SpeechCollator(self.asr_model, self.cfg.speed_perturb, self.cfg.seed),
            train_dataset=self.train_data,
            eval_dataset=SpeechDataset(self.splits.validation, self.cfg.text_field),
            callbacks=self._trainer_callbacks(),
            asr_model=self.asr_model,
            validation=self.splits.validation,
            eval_settings=self._eval_settings(n_bootstrap=0),
            lengths=self.train_data.lengths,
            max_nonfinite_steps=self.cfg.max_nonfinite_steps,
        )

    def _trainer_callbacks(self) -> list[TrainerCallback]:
        callbacks: list[TrainerCallback] = [
            TrainLogCallback(self.train_log, self.run_dir.curve_file),
            FinalStepCallback(),
        ]
        if self.cfg.patience:
            callbacks.append(EarlyStoppingCallback(early_stopping_patience=self.cfg.patience))
        if "tensorboard" in self.cfg.report_to:
            tensorboard = TensorBoardCallback()
            tensorboard.logging_dir = str(self.run_dir.tensorboard_dir)
            callbacks.append(tensorboard)
        return callbacks + self.callbacks

    def _eval_settings(self, n_bootstrap: int) -> EvalSettings:
        return EvalSettings(
            batch_size=self.eval_batch_size, decode=self.decode, n_bootstrap=n_bootstrap, progress=False
        )

    # --- train ------------------------------------------------------------
    def train(self) -> None:
        """The Trainer run (from the resume point, if any); on the main process, the best weights staged.

        The weights are checked finite and written to ``.best.staging/``; :meth:`report`
        renames them to ``best/`` once the run has succeeded.
        """
        assert self.trainer is not None, "call setup() first"
        with _disk_errors(self.out):
            self.train_output = self.trainer.train(resume_from_checkpoint=self.checkpoint)
        self.trainer.accelerator.wait_for_everyone()
        self.nonfinite_steps = self.trainer.nonfinite_steps
        state = self.trainer.state
        best = state.best_model_checkpoint
        self.best_step = checkpoint_step(best) if best else state.global_step
        if not self.trainer.is_world_process_zero():
            return
        self._check_finite_weights(best)
        if self.staged_best.exists():
            shutil.rmtree(self.staged_best)
        try:
            self.asr_model.save(self.staged_best)
        except Exception as err:
            shutil.rmtree(self.staged_best, ignore_errors=True)
            reason = write_failure(err)
            if reason is None:
                raise
            raise TrainingError(
                f"cannot write the best weights ({self.staged_best}, for {self.best_dir}): {reason} "
                f"({free_space(self.out)}); the checkpoints are kept: free some space, then rerun with --resume"
            ) from err
        log.info("best checkpoint: step %d (staged in %s)", self.best_step, self.staged_best)

    def _check_finite_weights(self, best: str | None) -> None:
        """A model with NaN or infinite weights is never saved as ``best/``."""
        bad = non_finite_tensors(self.asr_model.module.state_dict().items())
        if bad:
            where = Path(best).name if best else f"the weights at step {self.best_step}"
            shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
            raise TrainingError(
                f"the best checkpoint ({where}) holds NaN or infinite weights in {len(bad)} tensors ({shown}); "
                f"{self.best_dir} was not written. Lower learning_rate, check the training clips, "
                "or train in fp32"
            )

    def _promote_best(self) -> None:
        """Rename the staged weights to ``best/`` (the one written by an earlier run goes only now)."""
        if not self.staged_best.is_dir():
            raise TrainingError(
                f"{self.staged_best}: the staged best weights are missing; rerun with --resume"
            )
        old = self.out / ".best.old"
        if old.exists():
            shutil.rmtree(old)
        if self.best_dir.exists():
            self.best_dir.rename(old)
        self.staged_best.rename(self.best_dir)
        shutil.rmtree(old, ignore_errors=True)
        log.info("best checkpoint: step %d -> %s", self.best_step, self.best_dir)

    # --- report -----------------------------------------------------------
    def report(self) -> FinetuneSummary | None:
        """Test split (fine-tuned, zero-shot, paired bootstrap), curve and ``summary.json``; None off rank 0."""
        assert self.trainer is not None, "call setup() and train() first"
        if not self.trainer.is_world_process_zero():
            self._release_trainer()
            return None
        state = self.trainer.state
        self._release_trainer()  # optimizer state and gradients go before the test decodes
        with _disk_errors(self.out):
            tuned = self._test_fine_tuned()
        test = TestComparison(fine_tuned=tuned.record.metrics.headline())
        if self.cfg.zero_shot:
            with _disk_errors(self.out):
                base = self._test_zero_shot()
            test.zero_shot = base.record.metrics.headline()
            test.comparison = paired_bootstrap(
                base.score, tuned.score, n_bootstrap=self.cfg.bootstrap, labels=("zero_shot", "fine_tuned")
            )
        records = self.train_log.records()
        with _disk_errors(self.out):
            plot_training_curve(
                records, self.run_dir.curve_file, title=f"{self.cfg.model} ({self.cfg.method})"
            )
            summary = self._summary(state, records, test)
            self._promote_best()
            summary.save(self.run_dir.summary_file)
        log.info("summary: %s", json.dumps(test.to_json(), ensure_ascii=False, default=str))
        return summary

    def _release_trainer(self) -> None:
        """Drop the Trainer with its optimizer state, scheduler and wrappers, and free the GPU memory they held.

        The fine-tuned weights stay (``self.asr_model``); nothing can train after this.
        """
        trainer, self.trainer = self.trainer, None
        if trainer is not None:
            trainer.optimizer = None
            trainer.lr_scheduler = None
            trainer.model_wrapped = trainer.model  # the DDP/DeepSpeed wrapper
            trainer.deepspeed = None
            handler = getattr(trainer, "callback_handler", None)
            if handler is not None:
                handler.optimizer = handler.lr_scheduler = None
            accelerator = getattr(trainer, "accelerator", None)
            if accelerator is not None and hasattr(accelerator, "free_memory"):
                accelerator.free_memory()  # its references to the optimizer, scheduler and engine
            del trainer
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _test_dtype(self) -> str:
        """The dtype to load a model for the test decode in: the training half precision on CUDA, else fp32."""
        on_cuda = torch.device(self.args.device).type == "cuda"
        return self.precision if on_cuda and self.precision in ("bf16", "fp16") else "fp32"

    def _test_fine_tuned(self) -> EvalResult:
        """The best weights on the test split; also ``metrics_test.json``.

        On CUDA the decode runs under autocast in the training precision, as validation did.
        """
        self.asr_model.module.eval()
        with torch.no_grad(), decode_autocast(self.args.device, self.precision):
            result = evaluate_split(
                self.asr_model,
                self.splits.test,
                self.run_dir.test.path,
                self._eval_settings(self.cfg.bootstrap),
                resume=False,
                split="test",
                checkpoint=str(self.best_dir),
                best_step=self.best_step,
            )
        result.record.save(self.run_dir.test_metrics_file)
        return result

    def _test_zero_shot(self) -> EvalResult:
        """The base model, freshly loaded, on the test split (``zero_shot/``).

        On CUDA it is loaded in the training half precision (bf16/fp16), beside the fine-tuned model.
        """
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        base = load_model(self.cfg.model, device=str(self.args.device), dtype=self._test_dtype())
        apply_language(base, self.cfg.language)
        return evaluate_split(
            base,
            self.splits.test,
            self.run_dir.zero_shot.path,
            self._eval_settings(self.cfg.bootstrap),
            resume=self.resume,
            split="test",
            zero_shot=True,
        )

    def _summary(self, state: Any, records: list[dict[str, Any]], test: TestComparison) -> FinetuneSummary:
        cfg, splits, args = self.cfg, self.splits, self.args
        return FinetuneSummary(
            model=cfg.model,
            family=self.asr_model.family,
            method=cfg.method,
            output_dir=str(self.out),
            best_dir=str(self.best_dir),
            corpus=corpus_summary(cfg.data),
            best_checkpoint=state.best_model_checkpoint,
            best_step=self.best_step,
            best_validation_cer=validation_cer_at(records, self.best_step),
            start_validation_cer=validation_cer_at(records, 0),
            global_step=state.global_step,
            max_steps=state.max_steps,
            stopped_early=state.global_step < state.max_steps,
            test=test,
            trainable_parameters=self.trainable,
            total_parameters=self.total,
            train_utterances=len(splits.train),
            train_hours=splits.train_hours,
            dropped_longer_than_max_duration=len(splits.dropped),
            validation_utterances=len(splits.validation),
            test_utterances=len(splits.test),
            learning_rate=self.lr,
            effective_batch_size=self.batch_size * cfg.grad_accum * args.world_size,
            world_size=args.world_size,
            device=str(args.device),
            precision=self.precision,
            decoding=self.decode.as_dict(),
            eval_batch_size=self.eval_batch_size,
            train_runtime_seconds=self.train_output.metrics.get("train_runtime"),
            wall_seconds=round(time.time() - self.started, 1),
            provenance=provenance(),
            config=to_dict(self.resolved),
            nonfinite_steps=self.nonfinite_steps,
        )


@contextmanager
def _disk_errors(out: Path) -> Iterator[None]:
    """A full disk while the run writes its outputs is a :class:`TrainingError`, not a traceback."""
    try:
        yield
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = err.filename or out
        raise TrainingError(
            f"{where}: {write_failure(err)} ({free_space(out)}); the checkpoints in {out} are kept: "
            "free some space, then rerun with --resume"
        ) from err


def evaluate_split(
    model: ASRModel,
    utts: list[Utterance],
    out: Path,
    settings: EvalSettings,
    resume: bool,
    **context: Any,
) -> EvalResult:
    """:func:`asr.inference.evaluate` into ``out``: continued when ``resume``, else started afresh."""
    if out.exists() and not resume:
        shutil.rmtree(out)
    return evaluate(
        model, utts, out, settings, resume=resume and (out / PREDICTIONS_FILE).exists(), **context
    )


def finetune(
    cfg: FinetuneConfig, resume: bool = False, callbacks: Sequence[TrainerCallback] | None = None
) -> FinetuneSummary | None:
    """Run one fine-tuning job (setup, train, report); its summary, or None on non-main processes."""
    with output_lock(cfg.resolved_output_dir()):
        recipe = FinetuneRecipe(cfg, resume=resume, callbacks=callbacks or ())
        recipe.setup()
        recipe.train()
        return recipe.report()
