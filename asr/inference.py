"""The one inference path: manifest in, predictions.csv and metrics.json out.

Used by ``asr evaluate``, ``asr zero-shot``, validation during fine-tuning and the
benchmarks. Batches are length-sorted; audio for the next batch is decoded in a
background thread while the model works; every batch is written before the next.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from asr.data.audio import load_audio
from asr.data.manifest import Utterance
from asr.errors import ASRError
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.predictions import PredictionWriter, read_done, rewrite_in_order
from asr.runinfo import provenance, write_json

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    """What an evaluation run needs besides the model and the data."""

    batch_size: int = 16
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    n_bootstrap: int = 1000
    progress: bool = True


def length_sorted_batches(utts: Sequence[Utterance], batch_size: int) -> list[list[Utterance]]:
    """Longest first (memory peaks early, padding stays small)."""
    order = sorted(utts, key=lambda u: (-u.duration, u.id))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def _prefetch(batches: list[list[Utterance]]) -> Iterator[tuple[list[Utterance], list[np.ndarray]]]:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(lambda b: [load_audio(u.audio) for u in b], batches[0]) if batches else None
        for i, batch in enumerate(batches):
            waves = pending.result()
            if i + 1 < len(batches):
                pending = pool.submit(lambda b: [load_audio(u.audio) for u in b], batches[i + 1])
            yield batch, waves


def transcribe_manifest(
    model: ASRModel, utts: Sequence[Utterance], out_dir: Path, settings: EvalSettings, resume: bool = False
) -> list[dict[str, Any]]:
    """Decode every utterance into ``out_dir/predictions.csv``; returns rows in manifest order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "predictions.csv"
    if path.exists() and not resume:
        raise ASRError(f"{path} exists: pass --resume to continue it, or choose another --out")
    done = read_done(path)
    todo = [u for u in utts if u.id not in done]
    if done:
        log.info("resuming: %d of %d utterances already decoded", len(utts) - len(todo), len(utts))
    batches = length_sorted_batches(todo, settings.batch_size)
    bar = tqdm(
        total=len(utts),
        initial=len(utts) - len(todo),
        unit="utt",
        disable=not settings.progress,
        desc=f"decode {model.spec.name}",
        dynamic_ncols=True,
    )
    with PredictionWriter(path) as writer:
        for batch, waves in _prefetch(batches):
            durations = [len(w) / 16000 for w in waves]
            start = time.perf_counter()
            raw = model.transcribe(waves, settings.decode, durations=durations)
            elapsed = time.perf_counter() - start
            total = sum(durations) or 1.0
            rows = [
                {
                    "id": u.id,
                    "reference": u.text,
                    "prediction": model.clean_prediction(r),
                    "prediction_raw": r,
                    "duration": round(d, 6),
                    "decode_seconds": round(elapsed * d / total, 6),  # batch time shared by duration
                }
                for u, r, d in zip(batch, raw, durations, strict=True)
            ]
            writer.write(rows)
            for row in rows:
                done[row["id"]] = row
            bar.update(len(batch))
    bar.close()
    ordered = [done[u.id] for u in utts]
    rewrite_in_order(path, ordered)
    return ordered


def evaluate(
    model: ASRModel,
    utts: Sequence[Utterance],
    out_dir: Path,
    settings: EvalSettings,
    resume: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Transcribe and score; writes predictions.csv, metrics.json and per_utterance.csv."""
    from asr.metrics import score, write_score

    if not utts:
        raise ASRError("the manifest has no utterances to evaluate")
    rows = transcribe_manifest(model, utts, out_dir, settings, resume=resume)
    result = score(
        [r["id"] for r in rows],
        [r["reference"] for r in rows],
        [r["prediction"] for r in rows],
        durations=[float(r["duration"]) for r in rows],
        decode_seconds=[float(r["decode_seconds"]) for r in rows],
        n_bootstrap=settings.n_bootstrap,
    )
    result.metrics.update(
        model=model.spec.name,
        family=model.family,
        model_spec=model.spec.as_dict(),
        device=str(model.device),
        dtype=str(model.dtype).replace("torch.", ""),
        batch_size=settings.batch_size,
        decoding=model.decoding_settings(settings.decode),
        provenance=provenance(),
        **(extra or {}),
    )
    write_score(result, out_dir / "metrics.json", out_dir / "per_utterance.csv")
    return result.metrics


def save_run_settings(out_dir: Path, settings: dict[str, Any], resume: bool) -> None:
    """Record what a run decodes with; a resumed run must use the same settings."""
    import json

    path = out_dir / "run.json"
    if resume and path.is_file():
        before = json.loads(path.read_text(encoding="utf-8"))
        changed = {k for k in settings.keys() | before.keys() if before.get(k) != settings.get(k)}
        if changed:
            raise ASRError(
                f"{out_dir} was decoded with different settings ({', '.join(sorted(changed))}); "
                "use another --out to start a new run"
            )
    write_json(path, settings)
