"""The run folder, defined once: the name of every file a run writes, and one reader of them.

Training, evaluation, the report and the model card find a run's files through these names
(as transformers' ``trainer`` module names its own); :class:`RunDir` reads what a finished or
partial run folder holds, ``None`` (or empty) for each file that is not there yet.

A fine-tuning run (``asr finetune``)::

    config.yaml  train_log.jsonl  training_curve.png  tb/  checkpoint-N/  best/
    validation/step-N/  test/  zero_shot/  metrics_test.json  summary.json

An evaluation (``asr evaluate --out``, a run's ``test/``, ``zero_shot/`` and ``validation/step-N/``)::

    run.json  predictions.csv  metrics.json  per_utterance.csv  report.html

A benchmark stage adds ``stage.json``.

>>> run = RunDir("runs/wb-lora")
>>> run.checkpoint(120).name, run.test_metrics_file.name, run.zero_shot.metrics_file.as_posix()
('checkpoint-120', 'metrics_test.json', 'runs/wb-lora/zero_shot/metrics.json')
>>> checkpoint_step("runs/wb-lora/checkpoint-120")
120
"""

from __future__ import annotations

import logging
import re
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import yaml

from asr.errors import DataError
from asr.io import iter_jsonl
from asr.run_records import EvalRecord, FinetuneSummary, Record, RunSettings

log = logging.getLogger(__name__)

# an evaluation
RUN_SETTINGS_FILE = "run.json"
PREDICTIONS_FILE = "predictions.csv"
METRICS_FILE = "metrics.json"
PER_UTTERANCE_FILE = "per_utterance.csv"
REPORT_FILE = "report.html"
# a fine-tuning run
CONFIG_FILE = "config.yaml"
TRAIN_LOG_FILE = "train_log.jsonl"
CURVE_FILE = "training_curve.png"
TENSORBOARD_DIR = "tb"
CHECKPOINT_PREFIX = "checkpoint"  # transformers' PREFIX_CHECKPOINT_DIR: checkpoint-<step>/
BEST_DIR = "best"
VALIDATION_DIR = "validation"
TEST_DIR = "test"
ZERO_SHOT_DIR = "zero_shot"
TEST_METRICS_FILE = "metrics_test.json"
SUMMARY_FILE = "summary.json"
# a benchmark stage
STAGE_FILE = "stage.json"

_CHECKPOINT = re.compile(rf"{CHECKPOINT_PREFIX}-(\d+)")
R = TypeVar("R", bound=Record)


def checkpoint_step(checkpoint: str | Path) -> int:
    """The step of a ``checkpoint-N`` directory."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1])


def _at(name: str) -> property:
    return property(lambda self: self.path / name, doc=f"``{name}`` in this folder")


def _read(record: type[R], name: str, note: str = "") -> cached_property[R | None]:
    def read(self: RunDir) -> R | None:
        return self._record(record, self.path / name)

    read.__doc__ = f"``{name}``{note} (``None`` when missing)."
    return cached_property(read)


class RunDir:
    """A run folder: where each of its files lives, and what they hold (each read on first use).

    A missing file reads as ``None`` (an empty list for the training log). An unreadable one
    is a :class:`~asr.errors.DataError`, unless ``skip_unreadable_for`` names what it is
    left out of: then it reads as missing, with a warning and an entry in :attr:`problems`.
    """

    def __init__(self, path: str | Path, *, skip_unreadable_for: str | None = None) -> None:
        self.path = Path(path)
        self.skip_unreadable_for = skip_unreadable_for
        self.problems: list[str] = []

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- where each file lives ------------------------------------------------------------------
    # an evaluation
    run_settings_file, predictions_file = _at(RUN_SETTINGS_FILE), _at(PREDICTIONS_FILE)
    metrics_file, per_utterance_file = _at(METRICS_FILE), _at(PER_UTTERANCE_FILE)
    report_file = _at(REPORT_FILE)
    # a fine-tuning run
    config_file, train_log_file, curve_file = _at(CONFIG_FILE), _at(TRAIN_LOG_FILE), _at(CURVE_FILE)
    tensorboard_dir, best_dir = _at(TENSORBOARD_DIR), _at(BEST_DIR)
    test_metrics_file, summary_file = _at(TEST_METRICS_FILE), _at(SUMMARY_FILE)
    # a benchmark stage
    stage_file = _at(STAGE_FILE)

    # --- sub-folders ----------------------------------------------------------------------------
    @property
    def test(self) -> RunDir:
        """The fine-tuned model's evaluation on the test split (``test/``)."""
        return RunDir(self.path / TEST_DIR)

    @property
    def zero_shot(self) -> RunDir:
        """The base model's evaluation on the test split (``zero_shot/``)."""
        return RunDir(self.path / ZERO_SHOT_DIR)

    def validation(self, step: int) -> RunDir:
        """The validation decode at ``step`` (``validation/step-N/``)."""
        return RunDir(self.path / VALIDATION_DIR / f"step-{step}")

    def checkpoint(self, step: int) -> Path:
        return self.path / f"{CHECKPOINT_PREFIX}-{step}"

    def checkpoints(self) -> list[Path]:
        """The ``checkpoint-N`` folders, newest (highest step) first."""
        if not self.path.is_dir():
            return []
        found = [p for p in self.path.iterdir() if _CHECKPOINT.fullmatch(p.name) and p.is_dir()]
        return sorted(found, key=checkpoint_step, reverse=True)

    # --- what kind of run -----------------------------------------------------------------------
    @property
    def is_evaluation(self) -> bool:
        """A finished evaluation (``metrics.json``)."""
        return self.metrics_file.is_file()

    @property
    def is_finetune(self) -> bool:
        """A fine-tuning run that reached its test decode (``metrics_test.json``)."""
        return self.test_metrics_file.is_file()

    @property
    def is_training_run(self) -> bool:
        """A fine-tuning run folder, finished or not (``config.yaml`` with a log or a checkpoint)."""
        return self.config_file.is_file() and (self.train_log_file.is_file() or bool(self.checkpoints()))

    @property
    def is_unfinished_evaluation(self) -> bool:
        """An evaluation that wrote predictions but no ``metrics.json`` (killed, or still running)."""
        return not self.is_evaluation and self.run_settings_file.is_file()

    # --- contents -------------------------------------------------------------------------------
    metrics = _read(EvalRecord, METRICS_FILE)
    run_settings = _read(RunSettings, RUN_SETTINGS_FILE)
    test_metrics = _read(EvalRecord, TEST_METRICS_FILE, ": the best weights on the test split")
    summary = _read(FinetuneSummary, SUMMARY_FILE)

    @cached_property
    def config(self) -> dict[str, Any] | None:
        """``config.yaml``, the run's resolved config, as plain data (``None`` unless a mapping)."""
        path = self.config_file
        if not path.is_file():
            return None
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
            self._unreadable(err, path)
            return None
        return data if isinstance(data, dict) else None

    @cached_property
    def train_log(self) -> list[dict[str, Any]]:
        """``train_log.jsonl``'s records; a line cut by a kill mid-write is passed over."""
        if not self.train_log_file.is_file():
            return []
        try:
            return [row for _, row in iter_jsonl(self.train_log_file, skip_torn=True)]
        except DataError as err:
            self._unreadable(err, self.train_log_file)
            return []

    @property
    def curve(self) -> Path | None:
        """``training_curve.png`` when it was written (not empty)."""
        path = self.curve_file
        return path if path.is_file() and path.stat().st_size > 0 else None

    def _record(self, record: type[R], path: Path) -> R | None:
        if not path.is_file():
            return None
        try:
            return record.load(path)
        except DataError as err:
            self._unreadable(err, path)
            return None

    def _unreadable(self, err: Exception, path: Path) -> None:
        if self.skip_unreadable_for is None:
            if isinstance(err, DataError):
                raise err
            raise DataError(f"{path}: unreadable ({err})") from err
        log.warning("%s: unreadable, left out of %s (%s)", path, self.skip_unreadable_for, err)
        detail = str(err).removeprefix(str(path)).lstrip(":, ")  # the message never shows local paths
        self.problems.append(f"{path.name}: unreadable ({detail})")
