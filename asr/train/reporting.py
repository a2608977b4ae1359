"""Training records: ``train_log.jsonl`` (one JSON per Trainer log record) and the training curve PNG.

>>> import tempfile
>>> train_log = TrainLog(Path(tempfile.mkdtemp()) / "log.jsonl")
>>> train_log.append({"step": 10, "epoch": 0.5, "loss": 2.31})
>>> train_log.append({"step": 20, "epoch": 1.0, "eval_cer": 0.4})
>>> validation_cer_at(train_log.records(), 20)
0.4
>>> train_log.truncate(10)
>>> [r["step"] for r in train_log.records()]
[10]
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from asr.io import iter_jsonl, write_jsonl


class TrainLog:
    """Append-only JSON lines; :meth:`truncate` drops records after a step (used on resume)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, record: dict[str, Any]) -> None:
        """Add one record at the end of the file (flushed at once)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False, default=_jsonable) + "\n")
            handle.flush()

    def records(self) -> list[dict[str, Any]]:
        """Every complete record (a line cut by a kill mid-write is skipped)."""
        if not self.path.is_file():
            return []
        return [record for _, record in iter_jsonl(self.path, skip_torn=True)]

    def truncate(self, max_step: int) -> None:
        """Keep records up to ``max_step`` (a resumed run rewrites what came after its checkpoint)."""
        write_jsonl(self.path, [r for r in self.records() if int(r.get("step", 0)) <= max_step])


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)


class TrainLogCallback(TrainerCallback):
    """Writes every Trainer log record (loss, learning rate, validation metrics) to a TrainLog; redraws the curve."""

    def __init__(self, train_log: TrainLog, curve_png: Path | None = None):
        self.train_log = train_log
        self.curve_png = curve_png

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "epoch": state.epoch, "time": round(time.time(), 3)}
        record.update({k: v for k, v in logs.items() if k not in record})
        self.train_log.append(record)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if state.is_world_process_zero and self.curve_png is not None:
            plot_training_curve(self.train_log.records(), self.curve_png)


def plot_training_curve(records: list[dict[str, Any]], png: Path, title: str = "") -> Path | None:
    """Training loss and validation CER against the step (matplotlib, Agg); None without data."""
    loss = [(r["step"], r["loss"]) for r in records if _finite(r.get("loss"))]
    cer = [(r["step"], r["eval_cer"]) for r in records if _finite(r.get("eval_cer"))]
    if not loss and not cer:
        return None
    import matplotlib  # about 2 s to import: only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax_loss = plt.subplots(figsize=(7, 4), dpi=120)
    if loss:
        ax_loss.plot(*zip(*loss, strict=True), color="tab:blue", label="training loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss", color="tab:blue")
    ax_cer = ax_loss.twinx()
    if cer:
        ax_cer.plot(*zip(*cer, strict=True), color="tab:red", marker="o", label="validation CER")
    ax_cer.set_ylabel("validation CER", color="tab:red")
    if title:
        ax_loss.set_title(title)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def validation_cer_at(records: list[dict[str, Any]], step: int) -> float | None:
    """The validation CER logged at ``step`` (the last one if logged twice)."""
    found = [r["eval_cer"] for r in records if r.get("step") == step and _finite(r.get("eval_cer"))]
    return found[-1] if found else None
