"""Validation during training, shared by every process of a distributed run.

Each rank decodes its slice of the validation manifest (:func:`shard`) through
:func:`asr.inference.evaluate` into its own folder (``rank-R/``); rank 0 then merges the
predictions in manifest order and scores them once (:func:`merge_shards`), so the CER is the
one a single process would get. An exception on any rank is made known to every rank
(:func:`raise_if_any_failed`), so none waits in a collective for a rank that has failed.
On CUDA the decode runs under autocast in the training precision (:func:`decode_autocast`).

>>> [u for u in shard(["a", "b", "c", "d", "e"], rank=1, world_size=2, key=lambda u: 0)]
['b', 'd']
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from asr.data.manifest import Utterance
from asr.errors import ASRError, TrainingError
from asr.inference import EvalResult, EvalSettings, score_rows
from asr.models.base import ASRModel
from asr.predictions import read_done, rewrite_in_order
from asr.run_dir import PREDICTIONS_FILE

T = TypeVar("T")


def shard(utts: Sequence[T], rank: int, world_size: int, key: Callable[[T], Any] | None = None) -> list[T]:
    """Rank ``rank``'s slice: every ``world_size``-th item of the longest-first order.

    Dealing the clips out by length gives every rank about the same amount of audio; each
    item lands in exactly one slice. ``key`` orders the items (default: duration, longest first).
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    order_key = key or (lambda u: (-(u.duration or 0.0), u.id))  # type: ignore[attr-defined]
    return sorted(utts, key=order_key)[rank::world_size]


def shard_dir(out: Path, rank: int) -> Path:
    """Where rank ``rank`` writes its slice of a validation run in ``out``."""
    return out / f"rank-{rank}"


def merge_shards(
    model: ASRModel,
    utts: Sequence[Utterance],
    shard_dirs: Sequence[Path],
    out: Path,
    settings: EvalSettings,
    **context: Any,
) -> EvalResult:
    """The ranks' ``predictions.csv`` in manifest order, scored once with :func:`asr.metrics.score`.

    Writes ``out/predictions.csv``, ``metrics.json`` and ``per_utterance.csv`` as
    :func:`asr.inference.evaluate` does for a single process.
    """
    done: dict[str, dict[str, Any]] = {}
    for folder in shard_dirs:
        done.update(read_done(folder / PREDICTIONS_FILE))
    missing = [u.id for u in utts if u.id not in done]
    if missing:
        raise ASRError(
            f"{out}: {len(missing)} validation utterances have no prediction from any rank "
            f"(e.g. {', '.join(missing[:5])})"
        )
    rows = [done[u.id] for u in utts]
    out.mkdir(parents=True, exist_ok=True)
    rewrite_in_order(out / PREDICTIONS_FILE, rows)
    return score_rows(model, rows, out, settings, **context)


def decode_autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """Autocast in the training precision (bf16/fp16) on CUDA; nothing elsewhere or in fp32."""
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    if torch.device(device).type != "cuda" or dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


def describe_error(err: BaseException, rank: int) -> str:
    """One line naming the rank and the error (what :func:`raise_if_any_failed` shares)."""
    return f"rank {rank}: {type(err).__name__}: {err}"


def distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return (
        torch.distributed.is_available()
        and torch.distributed.is_initialized()
        and torch.distributed.get_world_size() > 1
    )


def raise_if_any_failed(error: str | None, what: str, cause: BaseException | None = None) -> None:
    """Share this rank's error (or None) with every rank; raise on all of them if any rank failed.

    Every rank must call it at the same point (it is a collective when :func:`distributed`).
    """
    errors = [error]
    if distributed():
        errors = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(errors, error)
    failed = [e for e in errors if e]
    if failed:
        raise TrainingError(f"{what} failed: " + "; ".join(failed)) from cause
