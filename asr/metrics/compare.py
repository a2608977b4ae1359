"""Paired bootstrap comparison of two systems scored on the same utterances.

Utterances are matched by id and resampled *jointly* (the same draw for A and B), so
utterance difficulty cancels out. Reported:

- ``cer_a``, ``cer_b``: corpus CER of each system on all utterances,
- ``delta`` = ``cer_b - cer_a`` (negative: B makes fewer errors),
- ``delta_ci95``: 2.5th/97.5th percentiles of the resampled deltas,
- ``p_delta_ge_0``: fraction of resamples in which ``CER_B - CER_A >= 0``, i.e. in which
  B is *not* better than A. It is a one-sided bootstrap p-value for "B is better than A":
  a value below 0.05 means B was better in more than 95% of resamples. For "A is better
  than B" the corresponding figure is the fraction of resamples with delta <= 0, which is
  ``1 - p_delta_ge_0`` when no resample ties exactly.
"""

from __future__ import annotations

from typing import Any

from asr.errors import DataError
from asr.metrics.bootstrap import paired_delta
from asr.metrics.corpus import ScoreResult


def _examples(ids: list[str] | set[str], k: int = 5) -> str:
    return ", ".join(sorted(map(str, ids))[:k])


def paired_bootstrap(
    a: ScoreResult,
    b: ScoreResult,
    n_bootstrap: int = 1000,
    seed: int = 0,
    *,
    labels: tuple[str, str] = ("A", "B"),
) -> dict[str, Any]:
    """Compare two scored systems on the same ids (see module docstring for the fields).

    ``labels`` name the two systems in error messages (e.g. their prediction files).
    Raises :class:`~asr.errors.DataError` when the id sets or the normalized references differ.
    """
    by_id_b = {u["id"]: u for u in b.utterances}
    ids_a = [u["id"] for u in a.utterances]
    only_a = set(ids_a) - by_id_b.keys()
    only_b = by_id_b.keys() - set(ids_a)
    if only_a or only_b:
        parts = []
        if only_a:
            parts.append(f"{len(only_a)} ids only in {labels[0]} (e.g. {_examples(only_a)})")
        if only_b:
            parts.append(f"{len(only_b)} ids only in {labels[1]} (e.g. {_examples(only_b)})")
        raise DataError(
            f"cannot compare {labels[0]} and {labels[1]}: different utterances: {'; '.join(parts)}"
        )
    pairs = [(u, by_id_b[u["id"]]) for u in a.utterances]
    differ = [ua["id"] for ua, ub in pairs if ua["ref_norm"] != ub["ref_norm"]]
    if differ:
        raise DataError(
            f"cannot compare {labels[0]} and {labels[1]}: {len(differ)} utterances have different "
            f"normalized references (e.g. {_examples(differ)})"
        )
    errors_a = [ua["errors"] for ua, _ in pairs]
    errors_b = [ub["errors"] for _, ub in pairs]
    chars = [ua["ref_chars"] for ua, _ in pairs]
    total_chars = sum(chars)
    if total_chars == 0:
        raise DataError(f"all {len(chars)} references are empty after normalization; CER is undefined")
    ci, p = paired_delta(errors_a, errors_b, chars, n_bootstrap, seed)
    cer_a, cer_b = sum(errors_a) / total_chars, sum(errors_b) / total_chars
    return {
        "cer_a": cer_a,
        "cer_b": cer_b,
        "delta": cer_b - cer_a,
        "delta_ci95": ci,
        "p_delta_ge_0": p,
        "n_utterances": len(pairs),
        "n_bootstrap": n_bootstrap,
        "seed": seed,
    }
