"""Prometheus text exposition of the server's counters, gauges and histograms (no client library).

>>> m = Metrics()
>>> m.batch_requests.observe(3)
>>> print([line for line in m.render().splitlines() if line.startswith("asr_serve_batch_requests_bucket")][:3])
['asr_serve_batch_requests_bucket{le="1"} 0', 'asr_serve_batch_requests_bucket{le="2"} 0', 'asr_serve_batch_requests_bucket{le="4"} 1']
"""

from __future__ import annotations

import threading
from collections.abc import Sequence


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _labels(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", r"\\").replace('"', r"\"").replace("\n", r"\n") for v in labels.values())
    return "{" + ",".join(f'{k}="{v}"' for k, v in zip(labels, escaped, strict=True)) + "}"


class Counter:
    """A monotonically increasing total per label set."""

    kind = "counter"

    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[tuple[tuple[str, str], ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def samples(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items()) or [((), 0.0)]
        return [f"{self.name}{_labels(dict(key))} {_number(v)}" for key, v in items]


class Gauge:
    """A value read when scraped (``read`` is called then)."""

    kind = "gauge"

    def __init__(self, name: str, help_text: str, read) -> None:
        self.name, self.help, self.read = name, help_text, read

    def samples(self) -> list[str]:
        return [f"{self.name} {_number(self.read())}"]


class Histogram:
    """Cumulative buckets, ``_sum`` and ``_count``, as Prometheus expects."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Sequence[float]) -> None:
        self.name, self.help = name, help_text
        self.bounds = sorted(buckets)
        self._counts = [0] * (len(self.bounds) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        with self._lock:
            self._counts[index] += 1
            self._sum += value

    def samples(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines, running = [], 0
        for bound, count in zip([*self.bounds, float("inf")], counts, strict=True):
            running += count
            le = "+Inf" if bound == float("inf") else _number(bound)
            lines.append(f'{self.name}_bucket{{le="{le}"}} {running}')
        return [*lines, f"{self.name}_sum {_number(total)}", f"{self.name}_count {running}"]


class Metrics:
    """Everything ``/metrics`` shows; the batcher and the endpoints update it."""

    def __init__(self, queue_length=lambda: 0, in_progress=lambda: 0) -> None:
        self.requests = Counter("asr_serve_requests_total", "HTTP requests by endpoint and status code")
        self.audio_seconds = Counter(
            "asr_serve_audio_seconds_total", "seconds of audio transcribed (successful requests)"
        )
        self.decode_seconds = Counter("asr_serve_decode_seconds_total", "seconds the model spent decoding")
        self.queue_length = Gauge(
            "asr_serve_queue_length", "decoded uploads waiting for the model", queue_length
        )
        self.in_progress = Gauge(
            "asr_serve_requests_in_progress", "transcription requests admitted and not answered", in_progress
        )
        self.batch_requests = Histogram(
            "asr_serve_batch_requests", "requests decoded together in one batch", (1, 2, 4, 8, 16, 32, 64)
        )
        self.batch_pieces = Histogram(
            "asr_serve_batch_pieces", "audio pieces per model call", (1, 2, 4, 8, 16, 32, 64)
        )
        self.latency = Histogram(
            "asr_serve_request_seconds",
            "transcription request latency, upload to answer",
            (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )

    def render(self) -> str:
        out = []
        for metric in (
            self.requests, self.queue_length, self.in_progress, self.batch_requests,
            self.batch_pieces, self.latency, self.audio_seconds, self.decode_seconds,
        ):  # fmt: skip
            out += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}"]
            out += metric.samples()
        return "\n".join(out) + "\n"
