"""Per-utterance results of one evaluation folder, joined with the manifest.

An evaluation folder (``asr evaluate --out``, a fine-tuning run's ``test/`` or ``zero_shot/``)
holds ``per_utterance.csv`` (the scorer's rows), ``predictions.csv`` (durations, raw output)
and ``metrics.json``. The manifest adds the audio path and, where it has one, the speaker; a
CS-Mage id ``video_V_C`` gives the video ``V``.
"""

from __future__ import annotations

import csv
import itertools
import re
from pathlib import Path
from typing import Any

from asr.errors import DataError
from asr.io import iter_jsonl
from asr.metrics.corpus import ScoreResult
from asr.predictions import MAX_FIELD_CHARS, read_rows
from asr.run_dir import RunDir
from asr.run_records import CorpusMetrics

_VIDEO = re.compile(r"video_(\d+)_\d+")
INT_FIELDS = ("ref_chars", "sub", "del", "ins", "errors", "ref_words", "word_errors")


def _csv_rows(path: Path) -> list[dict[str, str]]:
    csv.field_size_limit(MAX_FIELD_CHARS)
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def group_of(uid: str, manifest_row: dict[str, Any] | None) -> str | None:
    """The speaker from the manifest, else ``video V`` from a CS-Mage id, else None."""
    speaker = (manifest_row or {}).get("speaker")
    if speaker not in (None, ""):
        return str(speaker)
    match = _VIDEO.fullmatch(uid)
    return f"video {match[1]}" if match else None


def read_manifest_rows(manifest: Path | None) -> dict[str, dict[str, Any]]:
    """Manifest rows by id (empty when there is no manifest to read)."""
    if manifest is None or not Path(manifest).is_file():
        return {}
    return {str(row.get("id")): row for _, row in iter_jsonl(manifest, skip_torn=True)}


def load_utterances(eval_dir: Path, manifest: Path | None = None) -> list[dict[str, Any]]:
    """One dict per utterance: the scorer's fields plus ``duration``, ``prediction_raw``,
    ``audio`` and ``group`` (speaker or video); empty when ``per_utterance.csv`` is missing."""
    run = RunDir(eval_dir)
    path = run.per_utterance_file
    if not path.is_file():
        return []
    extra = {r["id"]: r for r in read_rows(run.predictions_file)}
    by_id = read_manifest_rows(manifest)
    rows = []
    for row in _csv_rows(path):
        uid = row["id"]
        out: dict[str, Any] = dict(row)
        for key in INT_FIELDS:
            try:
                out[key] = int(row.get(key) or 0)
            except ValueError as err:
                raise DataError(f"{path}: {key} of {uid!r} is not an integer") from err
        out["cer"] = _number(row.get("cer"))
        decoded, entry = extra.get(uid, {}), by_id.get(uid)
        duration = _number(decoded.get("duration"))
        out["duration"] = duration if duration is not None else _number((entry or {}).get("duration"))
        out["prediction_raw"] = decoded.get("prediction_raw", row.get("prediction", ""))
        out["audio"] = (entry or {}).get("audio")
        out["group"] = group_of(uid, entry)
        rows.append(out)
    return rows


def as_score(utterances: list[dict[str, Any]], metrics: CorpusMetrics) -> ScoreResult:
    """A :class:`ScoreResult` for :func:`asr.metrics.paired_bootstrap`."""
    return ScoreResult(metrics, utterances)


def bucket_cer(utterances: list[dict[str, Any]], key: Any) -> dict[Any, tuple[float, int]]:
    """Corpus CER and utterance count per ``key(utterance)`` (None keys left out)."""
    totals: dict[Any, list[int]] = {}
    for u in utterances:
        k = key(u)
        if k is None:
            continue
        t = totals.setdefault(k, [0, 0, 0])
        t[0] += u["errors"]
        t[1] += u["ref_chars"]
        t[2] += 1
    return {k: (e / c if c else float("nan"), n) for k, (e, c, n) in totals.items()}


DURATION_EDGES = (0.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def duration_bucket(seconds: float | None, edges: tuple[float, ...] = DURATION_EDGES) -> str | None:
    """``"2-4 s"`` style label of the bucket holding ``seconds``.

    >>> duration_bucket(3.1), duration_bucket(40.0), duration_bucket(None)
    ('2-4 s', '>=30 s', None)
    """
    if seconds is None:
        return None
    for lo, hi in itertools.pairwise(edges):
        if lo <= seconds < hi:
            return f"{lo:g}-{hi:g} s"
    return f">={edges[-1]:g} s"
