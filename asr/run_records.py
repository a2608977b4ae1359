"""Typed run records: what ``metrics.json``, ``summary.json`` and ``run.json`` hold.

Each record is written in one place (``save``) and read back through the same class
(``load``); the JSON carries ``schema`` and ``schema_version`` so a reader knows what it
has. The scorer's numbers travel as :class:`CorpusMetrics` from the scorer to every
consumer (evaluation, validation, the summary, the model card) and are never recomputed.

>>> m = CorpusMetrics(cer=0.2, errors=1, substitutions=1, deletions=0, insertions=0, ref_chars=5,
...                   n_utterances=2, ser=0.5, wer=0.5)
>>> EvalRecord.from_json(EvalRecord(metrics=m, model="whisper-base").to_json()).metrics.cer
0.2
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from asr.errors import DataError
from asr.io import read_json, write_json
from asr.timing import PHASES, PhaseClock

SCHEMA_VERSION = 1
R = TypeVar("R", bound="Record")


class Record:
    """Base of the run records: JSON round trip with a schema name and version."""

    schema: ClassVar[str]

    def to_json(self) -> dict[str, Any]:
        data = {"schema": self.schema, "schema_version": SCHEMA_VERSION}
        data.update(self._fields_json())
        return data

    def _fields_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = (
                value._fields_json() if isinstance(value, Record) else value
            )  # nested: no schema keys
        return out

    @classmethod
    def from_json(cls: type[R], data: dict[str, Any], source: str = "record") -> R:
        """Build from parsed JSON; unknown keys are ignored, a newer schema version is refused."""
        if not isinstance(data, dict):
            raise DataError(f"{source}: expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise DataError(
                f"{source}: schema_version {version} is newer than this toolkit's ({SCHEMA_VERSION}); "
                "upgrade cs-mage-asr to read it"
            )
        return cls(**cls._kwargs(data, source))  # type: ignore[call-arg]

    @classmethod
    def _kwargs(cls, data: dict[str, Any], source: str) -> dict[str, Any]:
        kwargs = {f.name: data[f.name] for f in fields(cls) if f.name in data}  # type: ignore[arg-type]
        missing = [f.name for f in fields(cls) if f.name not in kwargs and _required(f)]  # type: ignore[arg-type]
        if missing:
            raise DataError(f"{source}: not a {cls.schema} record (missing {', '.join(missing)})")
        return kwargs

    def save(self, path: str | Path) -> Path:
        write_json(Path(path), self.to_json())
        return Path(path)

    @classmethod
    def load(cls: type[R], path: str | Path) -> R:
        return cls.from_json(read_json(path), source=str(path))


@dataclass
class CorpusMetrics(Record):
    """The scorer's corpus-level numbers (see :mod:`asr.metrics.corpus` for definitions)."""

    schema: ClassVar[str] = "corpus_metrics"

    cer: float
    errors: int
    substitutions: int
    deletions: int
    insertions: int
    ref_chars: int
    n_utterances: int
    ser: float
    wer: float | None
    n_empty_references: int = 0
    word_errors: int = 0
    ref_words: int = 0
    rtf: float | None = None
    audio_seconds: float | None = None
    decode_seconds: float | None = None
    cer_ci95: list[float] | None = None
    n_bootstrap: int = 0
    seed: int = 0
    normalization: dict[str, Any] = field(default_factory=dict)

    HEADLINE: ClassVar[tuple[str, ...]] = ("cer", "cer_ci95", "ser", "wer", "n_utterances", "rtf")

    def headline(self) -> dict[str, Any]:
        """The few numbers a summary table shows."""
        return {k: getattr(self, k) for k in self.HEADLINE}

    def _fields_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to_json(self) -> dict[str, Any]:
        return self._fields_json()

    @classmethod
    def _kwargs(cls, data: dict[str, Any], source: str) -> dict[str, Any]:
        kwargs = super()._kwargs(data, source)
        cer = kwargs["cer"]
        if not isinstance(cer, (int, float)) or isinstance(cer, bool) or not math.isfinite(cer):
            raise DataError(f"{source}: cer must be a finite number, got {cer!r}")
        return kwargs


def _required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


@dataclass
class Timing(Record):
    """Wall-clock seconds of one command by phase (see :mod:`asr.timing`); the phases add up to
    ``total_seconds``. ``import``: interpreter start, imports and argument parsing; ``load``: the
    model and the run's checks; ``decode``; ``finish``: scoring, ``metrics.json`` and the report."""

    schema: ClassVar[str] = "timing"

    import_seconds: float
    load_seconds: float
    decode_seconds: float
    finish_seconds: float
    total_seconds: float

    @classmethod
    def from_clock(cls, clock: PhaseClock) -> Timing:
        """The clock's phases (0 for one never lapped) and total, to the millisecond."""
        s = {phase: round(clock.seconds.get(phase, 0.0), 3) for phase in PHASES}
        return cls(s["import"], s["load"], s["decode"], s["finish"], round(clock.total, 3))


@dataclass
class EvalRecord(Record):
    """``metrics.json``: a scored decode of one manifest, with what produced it.

    In the JSON the corpus numbers stand at the top level (``cer``, ``ser``, ...), beside
    the run context; ``asr score`` writes the numbers alone.
    """

    schema: ClassVar[str] = "eval_metrics"

    metrics: CorpusMetrics
    model: str | None = None
    family: str | None = None
    model_spec: dict[str, Any] | None = None
    model_source: str | None = None
    manifest: str | None = None
    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    decoding: dict[str, Any] | None = None
    decode_stats: dict[str, Any] | None = None  # counts from this process's decode (a resumed run: its part)
    split: str | None = None
    step: int | None = None
    checkpoint: str | None = None
    best_step: int | None = None
    zero_shot: bool | None = None
    provenance: dict[str, Any] | None = None
    timing: Timing | None = None  # where the command's time went (``asr evaluate``)

    def _fields_json(self) -> dict[str, Any]:
        data = self.metrics.to_json()
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "metrics" and value is not None:
                data[f.name] = value._fields_json() if isinstance(value, Record) else value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = "record") -> EvalRecord:
        if not isinstance(data, dict):
            raise DataError(f"{source}: expected a JSON object, got {type(data).__name__}")
        record = super().from_json({**data, "metrics": None, "timing": None}, source)
        record.metrics = CorpusMetrics.from_json(data, source)
        if isinstance(data.get("timing"), dict):
            record.timing = Timing.from_json(data["timing"], f"{source} (timing)")
        return record


@dataclass
class TestComparison(Record):
    """The fine-tuned model against the zero-shot base on the test split."""

    schema: ClassVar[str] = "test_comparison"

    fine_tuned: dict[str, Any]
    zero_shot: dict[str, Any] | None = None
    comparison: dict[str, Any] | None = None


@dataclass
class FinetuneSummary(Record):
    """``summary.json``: one fine-tuning run, from data to the test CER."""

    schema: ClassVar[str] = "finetune_summary"

    model: str
    family: str
    method: str
    output_dir: str
    best_dir: str
    best_checkpoint: str | None
    best_step: int
    best_validation_cer: float | None
    start_validation_cer: float | None
    global_step: int
    max_steps: int
    stopped_early: bool
    test: TestComparison
    trainable_parameters: int
    total_parameters: int
    train_utterances: int
    train_hours: float
    dropped_longer_than_max_duration: int
    validation_utterances: int
    test_utterances: int
    learning_rate: float
    effective_batch_size: int
    world_size: int
    device: str
    precision: str
    decoding: dict[str, Any]
    eval_batch_size: int
    train_runtime_seconds: float | None
    wall_seconds: float
    provenance: dict[str, Any]
    config: dict[str, Any]
    nonfinite_steps: int = 0  # optimizer steps skipped for a non-finite loss or gradient
    corpus: dict[str, Any] | None = None  # asr.data.corpus_info.corpus_summary of the prepared data

    @classmethod
    def _kwargs(cls, data: dict[str, Any], source: str) -> dict[str, Any]:
        kwargs = super()._kwargs(data, source)
        if not isinstance(kwargs["test"], dict):
            raise DataError(f"{source}: 'test' must be an object")
        kwargs["test"] = TestComparison.from_json(kwargs["test"], f"{source} (test)")
        return kwargs


@dataclass
class RunSettings(Record):
    """``run.json``: everything that changes an evaluation's predictions; ``--resume`` must match it.

    ``decoding`` is what the family reports it decodes with (backend, compute type, beam,
    language, guard ...); ``manifest_sha256`` is the manifest file's content.
    """

    schema: ClassVar[str] = "eval_run_settings"

    model: str
    manifest: str
    limit: int | None
    decoding: dict[str, Any]
    dtype: str | None = None
    batch_size: int | None = None
    manifest_sha256: str | None = None

    def differences(self, other: RunSettings) -> list[str]:
        """Dotted names of the settings that differ, e.g. ``decoding.beam_size``."""
        mine, theirs = _flat(self._fields_json()), _flat(other._fields_json())
        return sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out
