"""Pieces of many files, batched through one model; results handed to a sink per file.

A background thread decodes, runs the VAD and cuts pieces (file after file) while the model
transcribes; a bounded queue and a pool of ``pool_batches`` batches cap the audio in memory.
Each pool is length-sorted into batches with :func:`asr.inference.length_sorted_batches`
and decoded by ``ASRModel.transcribe`` with the same :class:`DecodeOptions` (hallucination
guard included) and ``clean_prediction`` as ``asr evaluate``. A file whose decoding fails is
reported to the sink and the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from asr.data.audio import TARGET_SAMPLE_RATE
from asr.errors import ASRError
from asr.inference import length_sorted_batches
from asr.longform.cuts import CutStream
from asr.longform.segments import SegmentOptions
from asr.longform.vad import StreamingVAD

log = logging.getLogger(__name__)

Transcriber = Callable[[list[np.ndarray], list[float]], list[tuple[str, str]]]


@dataclass
class Piece:
    """One speech piece of one file; ``raw``/``text`` are filled in once decoded."""

    media: int
    index: int
    start: float
    end: float
    covered: float  # seconds of the file this piece accounts for on the progress bar
    wave: np.ndarray | None
    raw: str = ""
    text: str = ""
    duration: float = field(init=False)  # seconds of audio decoded (pauses cut out not counted)

    def __post_init__(self) -> None:
        self.duration = (self.end - self.start) if self.wave is None else self.wave.size / TARGET_SAMPLE_RATE

    @property
    def id(self) -> str:
        return f"{self.media:06d}:{self.index:06d}"


@dataclass
class MediaJob:
    """One input file: where it is, how long its header says it is, what became of it."""

    index: int
    path: Path
    duration: float
    pieces: list[Piece] = field(default_factory=list)
    ended: bool = False
    finished: bool = False
    seconds: float = 0.0  # decoded length, known once ended
    error: str | None = None
    waiting: int = 0  # pieces queued but not decoded yet


class Sink(Protocol):
    """Receives results: each decoded piece (audio still attached), then each finished file."""

    def piece(self, job: MediaJob, piece: Piece) -> None: ...

    def finish(self, job: MediaJob) -> None: ...

    def fail(self, job: MediaJob, message: str) -> None: ...


def model_transcriber(model: Any, options: Any) -> Transcriber:
    """``asr evaluate``'s per-batch call: ``transcribe`` with durations, then ``clean_prediction``."""

    def run(waves: list[np.ndarray], durations: list[float]) -> list[tuple[str, str]]:
        raw = model.transcribe(waves, options, durations=durations)
        return [(r, model.clean_prediction(r)) for r in raw]

    return run


@dataclass
class PipelineSettings:
    batch_size: int = 16
    pool_batches: int = 4
    segments: SegmentOptions = field(default_factory=SegmentOptions)
    progress: bool = True


def _produce(
    jobs: Sequence[MediaJob], settings: SegmentOptions, out: queue.Queue, stop: threading.Event
) -> None:
    """Thread body: put ``("piece", job, Piece)``, ``("end", job, (samples, last piece end))``, ``("error", ...)``."""
    try:
        vad = StreamingVAD()
        for job in jobs:
            if stop.is_set():
                return
            stream = CutStream(job.path, vad, settings)
            index, last_end = 0, 0
            try:
                for cut in stream:
                    start, end = cut.seconds
                    covered = (cut.end - last_end) / TARGET_SAMPLE_RATE
                    out.put(("piece", job, Piece(job.index, index, start, end, covered, cut.wave)))
                    index, last_end = index + 1, cut.end
                    if stop.is_set():
                        return
            except ASRError as err:
                out.put(("error", job, str(err)))
                continue
            except Exception as err:  # a decoder failure deep in PyAV / soxr: this file only
                log.debug("decoding %s failed", job.path, exc_info=True)
                out.put(("error", job, f"{job.path}: {type(err).__name__}: {err}"))
                continue
            out.put(("end", job, (stream.samples, last_end)))
        out.put(("done", None, None))
    except BaseException as err:  # the VAD could not load, or worse: stop the whole run
        out.put(("fatal", None, err))


def _events(jobs: Sequence[MediaJob], settings: PipelineSettings) -> Iterator[tuple[str, Any, Any]]:
    events: queue.Queue = queue.Queue(maxsize=settings.batch_size * 2)
    stop = threading.Event()
    worker = threading.Thread(target=_produce, args=(jobs, settings.segments, events, stop), daemon=True)
    worker.start()
    try:
        while True:
            kind, job, value = events.get()
            if kind == "done":
                return
            if kind == "fatal":
                raise value
            yield kind, job, value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                events.get(timeout=0.1)
        worker.join()


def run_pipeline(
    jobs: Sequence[MediaJob], transcriber: Transcriber | None, sink: Sink, settings: PipelineSettings
) -> dict[str, float]:
    """Decode every job; returns timing totals (``audio_seconds``, ``decode_seconds``, ``pieces``)."""
    bar = tqdm(
        total=sum(j.duration for j in jobs),
        unit="s",
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]",
        disable=not settings.progress,
        desc="transcribe" if transcriber else "segment",
        dynamic_ncols=True,
    )
    stats = {"audio_seconds": 0.0, "decode_seconds": 0.0, "pieces": 0}
    pool: list[tuple[MediaJob, Piece]] = []
    pool_size = max(1, settings.batch_size * settings.pool_batches)

    def flush() -> None:
        by_id = {p.id: (j, p) for j, p in pool}
        for batch in length_sorted_batches([p for _, p in pool], settings.batch_size):
            waves = [p.wave for p in batch]
            start = time.perf_counter()
            results = (
                transcriber(waves, [p.duration for p in batch]) if transcriber else [("", "")] * len(batch)
            )
            stats["decode_seconds"] += time.perf_counter() - start
            for piece, (raw, text) in zip(batch, results, strict=True):
                job = by_id[piece.id][0]
                piece.raw, piece.text = raw, text
                job.waiting -= 1
                if job.error is None:
                    sink.piece(job, piece)
                piece.wave = None
                bar.update(piece.covered)
        pool.clear()

    def settle() -> None:
        for job in jobs:
            if job.ended and not job.finished and job.waiting == 0 and job.error is None:
                job.finished = True
                sink.finish(job)
                stats["audio_seconds"] += job.seconds

    for kind, job, value in _events(jobs, settings):
        if kind == "piece":
            job.pieces.append(value)
            job.waiting += 1
            stats["pieces"] += 1
            pool.append((job, value))
            if len(pool) >= pool_size:
                flush()
                settle()
        elif kind == "end":
            samples, last_end = value
            job.ended, job.seconds = True, samples / TARGET_SAMPLE_RATE
            bar.total += job.seconds - job.duration  # the header's length was an estimate
            bar.update((samples - last_end) / TARGET_SAMPLE_RATE)
            if job.waiting == 0:
                settle()
        else:
            job.error = value
            sink.fail(job, value)
    flush()
    settle()
    bar.close()
    return stats
