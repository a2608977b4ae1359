"""Corpus scoring exactly as the CS-Mage protocol defines it.

Both reference and prediction are normalized with :func:`asr.text.normalize.normalize`
(the protocol unless ``options`` turn on ``t2s`` / ``strip_tags``), then aligned
character by character (:mod:`asr.metrics.alignment`).

- **CER** = total (S + D + I) / total normalized reference characters. An utterance whose
  normalized reference is empty adds its insertions to the numerator and 0 to the
  denominator (its own ``cer`` is ``None``, or 0.0 if the prediction is empty too). If *every* reference is empty, CER is
  undefined and a :class:`~asr.errors.DataError` is raised.
- **SER** = fraction of utterances with at least one character error.
- **WER** = word edit distance / reference words, on Jieba segmentations of the
  normalized texts (:mod:`asr.metrics.words`).
- **RTF** = sum(decode seconds) / sum(audio seconds) when both are given for every
  utterance, else ``None``.
- **cer_ci95**: 95% bootstrap interval over utterances (:mod:`asr.metrics.bootstrap`).

>>> r = score(["a", "b"], ["长沙话", "好咯"], ["长沙化", "好咯"], n_bootstrap=0)
>>> r.metrics.cer, r.metrics.substitutions, r.metrics.ser
(0.2, 1, 0.5)
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from asr.errors import DataError
from asr.metrics.alignment import align, edit_counts
from asr.metrics.bootstrap import cer_ci95
from asr.metrics.words import segment
from asr.run_records import CorpusMetrics
from asr.text.normalize import PROTOCOL, NormOptions, normalize

UTTERANCE_FIELDS = (
    "id",
    "reference",
    "prediction",
    "ref_norm",
    "hyp_norm",
    "ref_chars",
    "sub",
    "del",
    "ins",
    "errors",
    "cer",
    "ref_words",
    "word_errors",
    "alignment",
)


@dataclass
class ScoreResult:
    """Corpus metrics and one dict per utterance (keys: ``UTTERANCE_FIELDS``)."""

    metrics: CorpusMetrics
    utterances: list[dict[str, Any]] = field(default_factory=list)


def _check_inputs(ids: Sequence[str], references: Sequence[str], predictions: Sequence[str]) -> None:
    if not (len(ids) == len(references) == len(predictions)):
        raise DataError(
            f"ids, references and predictions differ in length: {len(ids)}, {len(references)}, {len(predictions)}"
        )
    if not ids:
        raise DataError("nothing to score: no utterances")
    dupes = [i for i, c in Counter(ids).items() if c > 1]
    if dupes:
        raise DataError(f"{len(dupes)} duplicate utterance ids, e.g. {', '.join(map(str, dupes[:5]))}")


def _optional_total(values: Sequence[float | None] | None, n: int, name: str) -> float | None:
    if values is None:
        return None
    if len(values) != n:
        raise DataError(f"{name} has {len(values)} values for {n} utterances")
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return None
    return float(sum(values))


def _undefined(n: int) -> DataError:
    return DataError(f"all {n} references are empty after normalization; CER is undefined")


def score(
    ids: Sequence[str],
    references: Sequence[str],
    predictions: Sequence[str],
    *,
    options: NormOptions | None = None,
    durations: Sequence[float] | None = None,
    decode_seconds: Sequence[float] | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> ScoreResult:
    """Score predictions against references (see module docstring for the definitions)."""
    _check_inputs(ids, references, predictions)
    opts = options or PROTOCOL
    n = len(ids)
    errors = np.zeros(n, dtype=np.int64)
    ref_chars = np.zeros(n, dtype=np.int64)
    totals = Counter()
    utterances: list[dict[str, Any]] = []
    for k, (uid, ref, hyp) in enumerate(zip(ids, references, predictions, strict=True)):
        for name, text in (("reference", ref), ("prediction", hyp)):
            if text is not None and not isinstance(text, str):
                raise DataError(f"utterance {uid!r}: {name} must be text, got {type(text).__name__} {text!r}")
        ref_norm, hyp_norm = normalize(ref, opts), normalize(hyp, opts)
        al = align(ref_norm, hyp_norm)
        ref_words = segment(ref_norm)
        word_errors = 0 if hyp_norm == ref_norm else sum(edit_counts(ref_words, segment(hyp_norm)))
        errors[k], ref_chars[k] = al.errors, len(ref_norm)
        totals.update(
            sub=al.sub, dele=al.dele, ins=al.ins, ser=al.errors > 0, words=len(ref_words), werr=word_errors
        )
        utterances.append(
            {
                "id": uid,
                "reference": ref or "",
                "prediction": hyp or "",
                "ref_norm": ref_norm,
                "hyp_norm": hyp_norm,
                "ref_chars": len(ref_norm),
                "sub": al.sub,
                "del": al.dele,
                "ins": al.ins,
                "errors": al.errors,
                "cer": al.errors / len(ref_norm) if ref_norm else (0.0 if al.errors == 0 else None),
                "ref_words": len(ref_words),
                "word_errors": word_errors,
                "alignment": al.ops,
            }
        )
    total_chars = int(ref_chars.sum())
    if total_chars == 0:
        raise _undefined(n)
    total_errors = int(errors.sum())
    audio = _optional_total(durations, n, "durations")
    decode = _optional_total(decode_seconds, n, "decode_seconds")
    metrics = CorpusMetrics(
        cer=total_errors / total_chars,
        errors=total_errors,
        substitutions=totals["sub"],
        deletions=totals["dele"],
        insertions=totals["ins"],
        ref_chars=total_chars,
        n_utterances=n,
        n_empty_references=int((ref_chars == 0).sum()),
        ser=totals["ser"] / n,
        wer=totals["werr"] / totals["words"],
        word_errors=totals["werr"],
        ref_words=totals["words"],
        rtf=decode / audio if audio and decode is not None else None,
        audio_seconds=audio,
        decode_seconds=decode,
        cer_ci95=cer_ci95(errors, ref_chars, n_bootstrap, seed),
        n_bootstrap=n_bootstrap,
        seed=seed,
        normalization=opts.as_dict(),
    )
    return ScoreResult(metrics, utterances)


def cer(references: Sequence[str], predictions: Sequence[str], options: NormOptions | None = None) -> float:
    """Corpus CER only (no alignment strings, WER or bootstrap), e.g. for training validation.

    >>> cer(["长沙话"], ["长沙"])
    0.3333333333333333
    """
    if len(references) != len(predictions):
        raise DataError(f"{len(references)} references but {len(predictions)} predictions")
    opts = options or PROTOCOL
    total_errors = total_chars = 0
    for ref, hyp in zip(references, predictions, strict=True):
        ref_norm = normalize(ref, opts)
        total_errors += Levenshtein.distance(ref_norm, normalize(hyp, opts))
        total_chars += len(ref_norm)
    if total_chars == 0:
        raise _undefined(len(references))
    return total_errors / total_chars
