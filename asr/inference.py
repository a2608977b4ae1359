"""The one inference path: manifest in, predictions.csv and metrics.json out.

Used by ``asr evaluate``, ``asr zero-shot``, validation during fine-tuning and the
benchmarks. Batches are length-sorted; audio for the next batch is decoded in a
background thread while the model works; every batch is written before the next.
The HTML error report (:mod:`asr.report.html`) is written by the callers that want one
(``asr evaluate``, ``asr zero-shot``, ``asr finetune``), not here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from asr.data.audio import audio_info, load_audio
from asr.data.manifest import Utterance
from asr.data.windows import SAMPLE_RATE, is_silent, split_long
from asr.errors import ASRError
from asr.io import check_output_dir, sha256_file
from asr.metrics import ScoreResult, score, write_score
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.predictions import PredictionWriter, read_done, rewrite_in_order
from asr.provenance import provenance
from asr.run_dir import METRICS_FILE, PER_UTTERANCE_FILE, PREDICTIONS_FILE, RUN_SETTINGS_FILE
from asr.run_records import EvalRecord, RunSettings

log = logging.getLogger(__name__)


@dataclass
class EvalSettings:
    """What an evaluation run needs besides the model and the data."""

    batch_size: int = 16
    decode: DecodeOptions = field(default_factory=DecodeOptions)
    n_bootstrap: int = 1000
    progress: bool = True


def length_sorted_batches(utts: Sequence[Utterance], batch_size: int) -> list[list[Utterance]]:
    """Longest first (memory peaks early, padding stays small).

    A row without ``duration`` (optional in manifests) is measured from its audio header.
    """
    for utt in utts:
        if utt.duration is None:
            utt.duration = audio_info(utt.audio).duration
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


def transcribe_batch(
    model: ASRModel,
    batch: Sequence[Utterance],
    waves: list[np.ndarray],
    options: DecodeOptions,
    durations: list[float],
) -> list[str]:
    """``model.transcribe``; utterances with a ``context`` manifest field are decoded with it (in
    groups of one context) instead of ``options.context`` (models without a context prompt ignore it)."""
    limit = model.max_audio_seconds
    if limit is not None and any(d > limit for d in durations):
        return _transcribe_windows(model, batch, waves, options, limit)
    contexts = [u.extra.get("context") or options.context for u in batch]
    raw = [""] * len(batch)
    for context in dict.fromkeys(contexts):
        rows = [i for i, c in enumerate(contexts) if c == context]
        texts = model.transcribe(
            [waves[i] for i in rows],
            replace(options, context=context),
            durations=[durations[i] for i in rows],
        )
        for i, text in zip(rows, texts, strict=True):
            raw[i] = text
    return raw


def _transcribe_windows(
    model: ASRModel, batch: Sequence[Utterance], waves: list[np.ndarray], options: DecodeOptions, limit: float
) -> list[str]:
    """Clips past the model's window are cut at their quietest moments (asr.data.windows); the
    windows with sound are decoded as one batch and each clip's texts joined in order."""
    pieces: list[tuple[int, np.ndarray]] = []
    for i, (utt, wave) in enumerate(zip(batch, waves, strict=True)):
        windows = split_long(wave, limit)
        if len(windows) > 1:
            log.warning("%s: %.1f s, longer than the model's %.0f s window: decoded in %d windows",
                        utt.id, len(wave) / SAMPLE_RATE, limit, len(windows))  # fmt: skip
        pieces += [(i, w) for w in windows if len(windows) == 1 or not is_silent(w)]
    sub_batch = [batch[i] for i, _ in pieces]
    sub_waves = [w for _, w in pieces]
    texts = transcribe_batch(model, sub_batch, sub_waves, options, [len(w) / SAMPLE_RATE for w in sub_waves])
    joined: list[list[str]] = [[] for _ in batch]
    for (i, _), text in zip(pieces, texts, strict=True):
        joined[i].append(text)
    return ["".join(p.strip() for p in parts) if len(parts) > 1 else "".join(parts) for parts in joined]


def transcribe_manifest(
    model: ASRModel, utts: Sequence[Utterance], out_dir: Path, settings: EvalSettings, resume: bool = False
) -> list[dict[str, Any]]:
    """Decode every utterance into ``out_dir/predictions.csv``; returns rows in manifest order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / PREDICTIONS_FILE
    if path.exists() and not resume:
        raise ASRError(f"{path} exists: pass --resume to continue it, or choose another --out")
    done = read_done(path)
    todo = [u for u in utts if u.id not in done]
    model.reset_decode_stats()
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
            raw = transcribe_batch(model, batch, waves, settings.decode, durations)
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


@dataclass
class EvalResult:
    """What one evaluation produced: the record written as metrics.json and the full score."""

    record: EvalRecord
    score: ScoreResult


def evaluate(
    model: ASRModel,
    utts: Sequence[Utterance],
    out_dir: Path,
    settings: EvalSettings,
    resume: bool = False,
    **context: Any,
) -> EvalResult:
    """Transcribe and score; writes predictions.csv, metrics.json and per_utterance.csv.

    ``context`` fills the record's run fields (``split``, ``step``, ``checkpoint``,
    ``best_step``, ``zero_shot``, ``model_source``, ``manifest``).
    """
    if not utts:
        raise ASRError("the manifest has no utterances to evaluate")
    rows = transcribe_manifest(model, utts, out_dir, settings, resume=resume)
    return score_rows(model, rows, out_dir, settings, **context)


def score_rows(
    model: ASRModel, rows: Sequence[dict[str, Any]], out_dir: Path, settings: EvalSettings, **context: Any
) -> EvalResult:
    """Score decoded rows (predictions.csv's) once; write metrics.json and per_utterance.csv."""
    result = score(
        [r["id"] for r in rows],
        [r["reference"] for r in rows],
        [r["prediction"] for r in rows],
        durations=[float(r["duration"]) for r in rows],
        decode_seconds=[float(r["decode_seconds"]) for r in rows],
        n_bootstrap=settings.n_bootstrap,
    )
    record = EvalRecord(
        metrics=result.metrics,
        model=model.spec.name,
        family=model.family,
        model_spec=model.spec.as_dict(),
        device=str(model.device),
        dtype=str(model.dtype).replace("torch.", ""),
        batch_size=settings.batch_size,
        decoding=model.decoding_settings(settings.decode),
        decode_stats=model.decode_stats() or None,
        provenance=provenance(),
        **context,
    )
    write_score(result, out_dir / METRICS_FILE, out_dir / PER_UTTERANCE_FILE, record=record)
    return EvalResult(record, result)


def _accept_edited_manifest(out_dir: Path, settings: RunSettings, utts: Sequence[Utterance]) -> None:
    done = read_done(out_dir / PREDICTIONS_FILE)
    by_id = {u.id: u for u in utts}
    stale = [
        i for i, row in done.items()
        if i in by_id and (row["reference"] != by_id[i].text or
                           (by_id[i].duration is not None and abs(float(row["duration"]) - by_id[i].duration) > 0.01))
    ]  # fmt: skip
    if stale:
        raise ASRError(
            f"{settings.manifest} changed since {out_dir} was decoded and {len(stale)} decoded rows no longer "
            f"match it (e.g. {', '.join(stale[:3])}: another reference or audio); use another --out"
        )
    gone = [i for i in done if i not in by_id]
    log.warning(
        "%s changed since the run started: %d decoded rows kept, %d no longer in it left out, %d to decode",
        settings.manifest, len(done) - len(gone), len(gone), sum(u.id not in done for u in utts),
    )  # fmt: skip
    settings.save(out_dir / RUN_SETTINGS_FILE)


def check_new_run(out_dir: Path, resume: bool) -> None:
    """Before any work: ``out_dir`` is writable, and holds no earlier run unless resuming it."""
    check_output_dir(out_dir)
    if not resume and (out_dir / PREDICTIONS_FILE).exists():
        raise ASRError(
            f"{out_dir / PREDICTIONS_FILE} exists: pass --resume to continue it, or choose another --out"
        )


def choose_backend(
    model: ASRModel, backend: str, *, resume_dir: Path | None = None, compute_type: str | None = None
) -> None:
    """``model.set_backend(backend)`` and one log line naming the engine chosen.

    ``auto`` continuing the run in ``resume_dir`` keeps the engine its ``run.json`` recorded where
    that one is available (a run started with torch goes on with torch, not half and half); an
    explicit ``backend`` that differs from the record is refused by :func:`save_run_settings`.
    """
    recorded, why, options = None, "", {}
    if backend == "auto":
        if resume_dir is not None and (resume_dir / RUN_SETTINGS_FILE).is_file():
            recorded = RunSettings.load(resume_dir / RUN_SETTINGS_FILE).decoding
        backend, options = model.auto_backend(recorded)
        kept = recorded is not None and recorded.get("backend", "torch") == backend
        why = " (--backend auto: the run's own, from run.json)" if kept else " (--backend auto)"
    if compute_type:
        options["compute_type"] = compute_type
    model.set_backend(backend, **options)
    chosen = model.decoding_settings(DecodeOptions())
    detail = chosen.get("compute_type") or str(model.param_dtype).replace("torch.", "")
    log.info("decoding backend: %s %s%s", chosen.get("backend", backend), detail, why)


def run_settings(
    model: ASRModel, source: str, manifest: Path, limit: int | None, settings: EvalSettings
) -> RunSettings:
    """Every setting that changes this run's predictions (see :class:`RunSettings`)."""
    return RunSettings(
        model=source,
        manifest=str(manifest.resolve()),
        limit=limit,
        decoding=model.decoding_settings(settings.decode),
        dtype=str(model.dtype).replace("torch.", ""),
        batch_size=settings.batch_size,
        manifest_sha256=sha256_file(manifest),
    )


def save_run_settings(
    out_dir: Path, settings: RunSettings, resume: bool, utts: Sequence[Utterance] | None = None
) -> None:
    """Record what a run decodes with; only the call that starts the run writes ``run.json``.

    A resumed run must match the recorded settings exactly; a run with predictions but no
    ``run.json`` (an older toolkit) cannot prove that and is refused. One exception: with
    ``utts``, a manifest edited since the run started (rows dropped, e.g. a clip that failed)
    is accepted when every decoded row still in it has the same reference and duration; rows
    no longer in it are left out of the results, and ``run.json`` records the new manifest.
    """
    path = out_dir / RUN_SETTINGS_FILE
    if path.is_file() and resume:
        changed = settings.differences(RunSettings.load(path))
        if changed == ["manifest_sha256"] and utts is not None:
            _accept_edited_manifest(out_dir, settings, utts)
            return
        if changed:
            raise ASRError(
                f"{out_dir} was decoded with different settings ({', '.join(changed)}); "
                "use the same settings, or another --out to start a new run"
            )
        return
    if (out_dir / PREDICTIONS_FILE).exists():
        raise ASRError(
            f"{out_dir} holds predictions but no record of their settings ({path.name}); choose another --out"
            if resume
            else f"{out_dir / PREDICTIONS_FILE} exists: pass --resume to continue it, or choose another --out"
        )
    settings.save(path)
