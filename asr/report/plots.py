"""Leaderboard plots (matplotlib, Agg), each written as PNG and SVG.

- ``cer_bars``: CER per row with 95% CI whiskers (skipped rows shown empty, labelled);
- ``cer_by_duration`` / ``cer_by_speaker``: corpus CER per duration bucket / speaker or video;
- ``training_curves``: training loss and validation CER of every fine-tuning run;
- ``zero_shot_vs_finetuned``: per model, zero-shot against each fine-tuned setting.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asr.report.rows import ZERO_SHOT, Row
from asr.report.utterances import DURATION_EDGES, bucket_cer, duration_bucket
from asr.run_dir import RunDir

MAX_GROUPS = 30  # speakers/videos shown in the per-speaker plot (the most frequent)


def _pyplot() -> Any:
    import matplotlib  # about 2 s to import: only the plots need it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, out: Path, name: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, dpi=120, metadata={"Date": None} if path.suffix == ".svg" else None)
    _pyplot().close(fig)
    return paths


def cer_bars(rows: list[Row], out: Path) -> list[Path]:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(rows) + 2), 4))
    labels = [r.label for r in rows]
    for i, row in enumerate(rows):
        if not row.ok:
            ax.bar(i, 0, color="none")
            ax.text(i, 0.01, "skipped", rotation=90, ha="center", va="bottom", fontsize=8, color="grey")
            continue
        m = row.metrics
        ci = m.cer_ci95
        err = [[m.cer - ci[0]], [ci[1] - m.cer]] if ci else None
        colour = "tab:grey" if row.setting == ZERO_SHOT else "tab:blue"
        ax.bar(i, m.cer, yerr=err, capsize=4, color=colour)
        ax.text(i, m.cer / 2, f"{m.cer:.3f}", ha="center", va="center", fontsize=8, color="white")
    ax.set_xticks(range(len(rows)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("CER (95% CI)")
    ax.set_title("CER by model (grey: zero-shot)")
    return _save(fig, out, "cer_bars")


def _grouped(rows: list[Row], key: Callable[[dict[str, Any]], Any], order: list[Any], out: Path,
             name: str, xlabel: str) -> list[Path]:  # fmt: skip
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(order) * max(1, len(rows)) / 2 + 3), 4))
    width = 0.8 / max(1, len(rows))
    for k, row in enumerate(rows):
        cers = bucket_cer(row.utterances(), key)
        xs = [i + k * width for i, b in enumerate(order) if b in cers]
        ys = [cers[b][0] for b in order if b in cers]
        ax.bar(xs, ys, width=width, label=row.label)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(order))], [str(b) for b in order],
                  rotation=30 if len(order) > 6 else 0, ha="right" if len(order) > 6 else "center",
                  fontsize=8)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("CER")
    ax.legend(fontsize=7)
    return _save(fig, out, name)


def cer_by_duration(rows: list[Row], out: Path) -> list[Path]:
    rows = [r for r in rows if r.ok and any(u.get("duration") is not None for u in r.utterances())]
    if not rows:
        return []
    present = {duration_bucket(u["duration"]) for r in rows for u in r.utterances()}
    labels = [duration_bucket(e + 1e-9) for e in DURATION_EDGES]
    order = [b for b in labels if b in present]
    return _grouped(rows, lambda u: duration_bucket(u["duration"]), order, out, "cer_by_duration",
                    "clip duration")  # fmt: skip


def cer_by_speaker(rows: list[Row], out: Path) -> list[Path]:
    rows = [r for r in rows if r.ok and any(u.get("group") for u in r.utterances())]
    counts: dict[str, int] = {}
    for u in rows[0].utterances() if rows else []:
        if u.get("group"):
            counts[u["group"]] = counts.get(u["group"], 0) + 1
    if len(counts) < 2:
        return []
    order = sorted(counts, key=lambda g: (-counts[g], _natural(g)))[:MAX_GROUPS]
    order.sort(key=_natural)
    return _grouped(rows, lambda u: u.get("group"), order, out, "cer_by_speaker", "speaker / video")


def _natural(text: str) -> tuple[Any, ...]:
    head, _, tail = text.rpartition(" ")
    return (head, int(tail)) if tail.isdigit() else (text, 0)


def _curve(run_dir: Path, key: str) -> list[tuple[int, float]]:
    points = []
    for r in RunDir(run_dir).train_log:
        value = r.get(key)
        if isinstance(r.get("step"), int) and isinstance(value, (int, float)) and math.isfinite(value):
            points.append((r["step"], float(value)))
    return points


def training_curves(rows: list[Row], out: Path) -> list[Path]:
    runs = [r for r in rows if r.ok and r.setting != ZERO_SHOT and r.run_dir is not None]
    curves = [(r, _curve(r.run_dir, "loss"), _curve(r.run_dir, "eval_cer")) for r in runs]
    curves = [c for c in curves if c[1] or c[2]]
    if not curves:
        return []
    plt = _pyplot()
    fig, (ax_loss, ax_cer) = plt.subplots(1, 2, figsize=(10, 4))
    for row, loss, cer in curves:
        if loss:
            ax_loss.plot(*zip(*loss, strict=True), label=row.label)
        if cer:
            ax_cer.plot(*zip(*cer, strict=True), marker="o", label=row.label)
    ax_loss.set(xlabel="step", ylabel="training loss", title="training loss")
    ax_cer.set(xlabel="step", ylabel="validation CER", title="validation CER")
    ax_loss.legend(fontsize=7)
    ax_cer.legend(fontsize=7)
    return _save(fig, out, "training_curves")


def zero_shot_vs_finetuned(rows: list[Row], out: Path) -> list[Path]:
    models = [m for m in dict.fromkeys(r.model for r in rows if r.ok)
              if any(r.ok and r.model == m and r.setting != ZERO_SHOT for r in rows)]  # fmt: skip
    if not models:
        return []
    settings = list(dict.fromkeys(r.setting for r in rows if r.ok and r.model in models))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(5, 1.5 * len(models) + 2), 4))
    width = 0.8 / len(settings)
    for k, setting in enumerate(settings):
        found = {r.model: r.metrics.cer for r in rows if r.ok and r.setting == setting}
        xs = [i + k * width for i, m in enumerate(models) if m in found]
        ax.bar(xs, [found[m] for m in models if m in found], width=width, label=setting)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(models))], models, fontsize=8)
    ax.set_ylabel("test CER")
    ax.set_title("zero-shot vs fine-tuned")
    ax.legend(fontsize=8)
    return _save(fig, out, "zero_shot_vs_finetuned")


PLOTS = (cer_bars, cer_by_duration, cer_by_speaker, training_curves, zero_shot_vs_finetuned)


def write_plots(rows: list[Row], out: Path) -> list[Path]:
    """Every plot the rows have data for; returns the files written."""
    return [path for plot in PLOTS for path in plot(rows, out)]
