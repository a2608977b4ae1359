"""Cross-request dynamic batching: one worker thread owns the model and decodes queued pieces together.

A request's audio arrives as pieces (one for a clip, several for a long recording). The worker
waits until ``max_batch`` pieces are queued or ``window`` seconds have passed since the oldest
waiting request arrived, then takes up to ``max_batch`` pieces round-robin over the queued
requests (so a short clip is not stuck behind a long recording's pieces, and those pieces
share batches with other requests'), and decodes them with :func:`asr.inference.transcribe_batch`,
the call ``asr evaluate`` makes (guard, windows, per-utterance context) followed by
``clean_prediction``. A request's future resolves once all its pieces are decoded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

import numpy as np

from asr.data.manifest import Utterance
from asr.data.windows import SAMPLE_RATE
from asr.inference import transcribe_batch
from asr.models.base import ASRModel
from asr.models.spec import DecodeOptions
from asr.serve.metrics import Metrics

log = logging.getLogger(__name__)


class Closed(Exception):
    """The batcher is shutting down and takes no new requests."""


@dataclass(eq=False)  # hashed by identity
class Job:
    """One request's pieces and decoding choices; ``future`` gets the cleaned text of each piece."""

    waves: list[np.ndarray]
    language: str | None = None
    context: str | None = None
    future: Future = field(default_factory=Future)
    arrived: float = field(default_factory=time.monotonic)
    texts: list[str | None] = field(init=False)
    taken: int = 0

    def __post_init__(self) -> None:
        self.texts = [None] * len(self.waves)


class Batcher:
    """The decoding worker (:meth:`start`, :meth:`submit`, :meth:`close`)."""

    def __init__(
        self, model: ASRModel, options: DecodeOptions, max_batch: int, window: float, metrics: Metrics
    ) -> None:
        self.model, self.options = model, options
        self.max_batch, self.window, self.metrics = max_batch, window, metrics
        self._jobs: list[Job] = []
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="asr-serve-decoder", daemon=True)

    @property
    def queue_length(self) -> int:
        """Requests queued or partly decoded."""
        return len(self._jobs)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> Future:
        with self._cond:
            if self._closing:
                raise Closed
            if not job.waves:  # a recording without speech: nothing to decode
                job.future.set_result([])
                return job.future
            self._jobs.append(job)
            self._cond.notify()
        return job.future

    def close(self) -> None:
        """Decode what is queued, then stop the worker."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        if self._thread.is_alive():
            self._thread.join()

    def _pending(self) -> int:
        return sum(len(j.waves) - j.taken for j in self._jobs)

    def _next_batch(self) -> list[tuple[Job, int]] | None:
        """Wait for work, then up to ``max_batch`` pieces round-robin over the queued requests."""
        with self._cond:
            while not self._pending():
                if self._closing:
                    return None
                self._cond.wait()
            deadline = min(j.arrived for j in self._jobs if j.taken < len(j.waves)) + self.window
            while self._pending() < self.max_batch and not self._closing:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch: list[tuple[Job, int]] = []
            while len(batch) < self.max_batch and self._pending():
                for job in self._jobs:
                    if job.taken < len(job.waves) and len(batch) < self.max_batch:
                        batch.append((job, job.taken))
                        job.taken += 1
            return batch

    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._run_batch(batch)
        finally:  # nothing may wait forever on a worker that is gone
            with self._cond:
                self._closing = True
                jobs, self._jobs = self._jobs, []
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(Closed("the decoder stopped"))

    def _run_batch(self, batch: list[tuple[Job, int]]) -> None:
        jobs = list(dict.fromkeys(job for job, _ in batch))
        self.metrics.batch_requests.observe(len(jobs))
        self.metrics.batch_pieces.observe(len(batch))
        start = time.perf_counter()
        try:
            self._decode(batch)
        except Exception as err:
            if len(jobs) == 1:
                jobs[0].future.set_exception(err)
            else:
                # One request's bad setting (say, its language) must not fail the others: decode
                # each request's pieces alone, and fail only those that fail again.
                log.warning(
                    "a batch of %d requests failed; decoding them one by one", len(jobs), exc_info=True
                )
            for job in jobs if len(jobs) > 1 else []:
                try:
                    self._decode([(j, i) for j, i in batch if j is job])
                except Exception as err:
                    if not job.future.done():
                        job.future.set_exception(err)
        self.metrics.decode_seconds.inc(time.perf_counter() - start)
        with self._cond:
            for job in jobs:
                if job.future.done() or all(t is not None for t in job.texts):
                    self._jobs.remove(job)
                    if not job.future.done():
                        job.future.set_result(list(job.texts))

    def _decode(self, batch: Sequence[tuple[Job, int]]) -> None:
        """Decode the pieces, one call per language asked for; results into each job's ``texts``."""
        for language in dict.fromkeys(job.language for job, _ in batch):
            group = [(job, i) for job, i in batch if job.language == language and not job.future.done()]
            utts = [
                Utterance(f"{n}", "", job.waves[i].size / SAMPLE_RATE, "", "", extra={"context": job.context})
                for n, (job, i) in enumerate(group)
            ]
            options = self.options if language is None else replace(self.options, language=language)
            raw = transcribe_batch(
                self.model, utts, [job.waves[i] for job, i in group], options, [u.duration for u in utts]
            )
            for (job, i), text in zip(group, raw, strict=True):
                job.texts[i] = self.model.clean_prediction(text)
