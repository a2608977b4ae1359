"""Leaderboard rows from run folders, read through :class:`asr.run_dir.RunDir`.

A folder passed to ``asr report`` is one of:

- an evaluation (``metrics.json``): one row;
- a fine-tuning run (``summary.json`` / ``metrics_test.json``): its zero-shot row (``zero_shot/``)
  and its fine-tuned row (``test/``); a run without ``summary.json`` (still training, or killed)
  is an ``unfinished`` row saying how far it got, never its validation decodes as test rows;
- an evaluation with predictions but no ``metrics.json``: an ``unfinished`` row;
- a benchmark stage marked skipped (``stage.json`` with ``status: skipped``): a row with the reason;
- anything else (a benchmark or ``asr zero-shot`` output): its sub-folders, in name order.

A ``stage.json`` (written by ``asr benchmark``) gives the row's standalone command; otherwise the
command, commit and date come from the record's provenance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr.data.corpus_info import UNKNOWN, CorpusInfo, find_corpus
from asr.errors import DataError
from asr.models.registry import MODELS
from asr.predictions import read_rows
from asr.report.utterances import load_utterances
from asr.run_dir import (
    CONFIG_FILE,
    METRICS_FILE,
    RUN_SETTINGS_FILE,
    STAGE_FILE,
    TEST_METRICS_FILE,
    RunDir,
    checkpoint_step,
)
from asr.run_records import CorpusMetrics, EvalRecord

SETTINGS = {"lora": "LoRA", "full": "full", "decoder": "decoder"}
ZERO_SHOT = "zero-shot"


@dataclass
class Row:
    """One leaderboard line: an evaluation on a test split, or a model that was skipped."""

    model: str
    setting: str
    status: str = "ok"  # ok | skipped | failed | unfinished
    reason: str = ""
    metrics: CorpusMetrics | None = None
    eval_dir: Path | None = None
    run_dir: Path | None = None
    manifest: Path | None = None
    command: str | None = None
    commit: str | None = None
    date: str | None = None
    corpus: CorpusInfo = field(default_factory=lambda: UNKNOWN)
    note: str = ""
    significance: dict[str, Any] | None = None
    _utterances: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def label(self) -> str:
        return f"{self.model} {self.setting}"

    @property
    def short_commit(self) -> str:
        """The commit's first 12 hex digits, ``-dirty`` kept."""
        sha = self.commit or ""
        return sha[:12] + ("-dirty" if sha.endswith("-dirty") else "")

    @property
    def ok(self) -> bool:
        return self.status == "ok" and self.metrics is not None

    def utterances(self) -> list[dict[str, Any]]:
        """Per-utterance results (read once; empty without ``per_utterance.csv``)."""
        if self._utterances is None:
            self._utterances = load_utterances(self.eval_dir, self.manifest) if self.eval_dir else []
        return self._utterances

    def rate(self, count: str) -> float | None:
        """``substitutions``/``deletions``/``insertions`` per reference character."""
        m = self.metrics
        return getattr(m, count) / m.ref_chars if m and m.ref_chars else None


def _stage(folder: Path) -> dict[str, Any]:
    path = folder / STAGE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise DataError(f"{path}: not JSON ({err})") from None
    return data if isinstance(data, dict) else {}


def _manifest(eval_dir: Path, record: EvalRecord, data: Any = None) -> Path | None:
    if record.manifest:
        return Path(record.manifest)
    settings = RunDir(eval_dir).run_settings
    if settings is not None:
        return Path(settings.manifest)
    if data:
        return Path(str(data)) / "manifests" / f"{record.split or 'test'}.jsonl"
    return None


def _required(record: EvalRecord | None, path: Path) -> EvalRecord:
    if record is None:
        raise DataError(f"{path}: file not found")
    return record


def _provenance(record: Any, stage: dict[str, Any]) -> dict[str, Any]:
    prov = getattr(record, "provenance", None) or {}
    return {
        "command": stage.get("command") or prov.get("command"),
        "commit": prov.get("git_commit"),
        "date": prov.get("created"),
    }


def eval_row(eval_dir: Path, setting: str | None = None, data: Any = None, **extra: Any) -> Row:
    """The row of one evaluation folder (``metrics.json``)."""
    record = _required(RunDir(eval_dir).metrics, eval_dir / METRICS_FILE)
    stage = _stage(eval_dir)
    name = record.model or eval_dir.name
    if setting is None:
        source = record.model_source or name
        base = record.zero_shot or (not record.checkpoint and source in MODELS)
        setting = ZERO_SHOT if base else stage.get("setting", "fine-tuned")
    fields = {"run_dir": eval_dir, **_provenance(record, stage), **extra}
    return _row(stage.get("model", name), setting, record, eval_dir, data, **fields)


def _row(model: str, setting: str, record: EvalRecord, eval_dir: Path, data: Any, **fields: Any) -> Row:
    """A row of ``record`` (decoded into ``eval_dir``), with its manifest and corpus found."""
    manifest = _manifest(eval_dir, record, data)
    corpus = find_corpus(data=data, manifest=manifest)
    return Row(
        model=model, setting=setting, metrics=record.metrics, eval_dir=eval_dir, manifest=manifest,
        corpus=corpus, **fields,
    )  # fmt: skip


def finetune_rows(run_dir: Path) -> list[Row]:
    """The zero-shot row (if the run decoded its base model) and the fine-tuned row of a run."""
    run = RunDir(run_dir)
    summary = run.summary
    stage = _stage(run_dir)
    data = (summary.config or {}).get("data") if summary else None
    method = summary.method if summary else stage.get("method", "")
    setting = SETTINGS.get(method, method or "fine-tuned")
    rows = []
    if run.zero_shot.is_evaluation:
        rows.append(eval_row(run.zero_shot.path, ZERO_SHOT, data, run_dir=run_dir))
    tuned_dir = run.test.path if run.test.per_utterance_file.is_file() else run_dir
    record = _required(run.test_metrics, run.test_metrics_file)
    prov = _provenance(summary or record, stage)
    for row in rows:  # the zero-shot decode was part of the same command
        row.command = row.command or prov["command"]
    model = summary.model if summary else (record.model or run_dir.name)
    note = f"best step {record.best_step}" if record.best_step is not None else ""
    rows.append(_row(model, setting, record, tuned_dir, data, run_dir=run_dir, note=note, **prov))
    return rows


def skipped_row(folder: Path, stage: dict[str, Any]) -> Row:
    return Row(
        model=stage.get("model", folder.name),
        setting=stage.get("setting", "?"),
        status=stage.get("status", "skipped"),
        reason=str(stage.get("reason") or f"not finished (stage {stage.get('status', 'unknown')})"),
        run_dir=folder,
        command=stage.get("command"),
    )


def unfinished_training_rows(run_dir: Path, stage: dict[str, Any]) -> list[Row]:
    """A fine-tuning run without ``summary.json``: its finished zero-shot row, then one row saying
    how far training got (its validation decodes are of partly trained weights: never test rows)."""
    run = RunDir(run_dir)
    config = run.config or {}
    rows = [eval_row(run.zero_shot.path, ZERO_SHOT, config.get("data"), run_dir=run_dir)]
    rows = rows if run.zero_shot.is_evaluation else []
    steps = [checkpoint_step(p) for p in run.checkpoints()]
    got = f"last checkpoint at step {steps[0]}" if steps else "no checkpoint yet"
    if run.is_finetune:
        got += "; metrics_test.json written but not summary.json (stopped while finishing)"
    method = config.get("method") or stage.get("method", "")
    rows.append(
        Row(
            model=stage.get("model") or str(config.get("model") or run_dir.name),
            setting=SETTINGS.get(method, method or "fine-tuned"),
            status="unfinished",
            reason=f"fine-tuning not finished ({got}): still running, or rerun `asr finetune ... --resume`",
            run_dir=run_dir,
            command=stage.get("command"),
        )
    )
    return rows


def unfinished_evaluation_row(eval_dir: Path, stage: dict[str, Any]) -> Row:
    """An evaluation that has predictions but no metrics yet (killed, or still decoding)."""
    run = RunDir(eval_dir)
    settings = run.run_settings
    done = len(read_rows(run.predictions_file)) if run.predictions_file.is_file() else 0
    return Row(
        model=stage.get("model") or (settings.model if settings else eval_dir.name),
        setting=stage.get("setting", "evaluation"),
        status="unfinished",
        reason=f"evaluation not finished ({done} utterances decoded, no metrics.json): rerun with --resume",
        run_dir=eval_dir,
        command=stage.get("command"),
    )


def collect(folders: list[Path]) -> list[Row]:
    """Rows of every folder (see module docstring), duplicates of the same decode dropped."""
    rows: list[Row] = []
    for folder in folders:
        rows += _rows_of(Path(folder))
    return _dedupe(rows)


def _rows_of(folder: Path) -> list[Row]:
    if not folder.is_dir():
        raise DataError(f"{folder}: no such run folder")
    stage, run = _stage(folder), RunDir(folder)
    finished = run.is_evaluation or (run.is_finetune and run.summary_file.is_file())
    if stage.get("status") in ("skipped", "failed") or (stage and not finished and not run.is_training_run):
        return [skipped_row(folder, stage)]
    if run.is_training_run or run.is_finetune:
        return finetune_rows(folder) if finished else unfinished_training_rows(folder, stage)
    if run.is_evaluation:
        return [eval_row(folder)]
    if run.is_unfinished_evaluation:
        return [unfinished_evaluation_row(folder, stage)]
    rows: list[Row] = []
    for sub in sorted(
        (p for p in folder.iterdir() if p.is_dir()), key=lambda p: (p.name != "zero-shot", p.name)
    ):
        rows += _rows_of(sub) if _has_results(sub) else []
    return rows


def _has_results(folder: Path, depth: int = 2) -> bool:
    markers = (STAGE_FILE, METRICS_FILE, TEST_METRICS_FILE, RUN_SETTINGS_FILE, CONFIG_FILE)
    if any((folder / m).is_file() for m in markers):
        return True
    return depth > 0 and any(_has_results(p, depth - 1) for p in folder.iterdir() if p.is_dir())


def _dedupe(rows: list[Row]) -> list[Row]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for row in rows:
        m = row.metrics
        key = (row.model, row.setting, m.errors, m.ref_chars, m.n_utterances) if m else (id(row),)
        if key not in seen:
            seen.add(key)
            out.append(row)
    return out
