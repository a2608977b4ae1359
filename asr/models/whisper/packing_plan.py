"""Packing short clips into one 30 s Whisper window, and splitting the timestamped text back.

Pure planning and bookkeeping, no model: :func:`plan_windows` places clips greedily (in the
order given, or longest first) with a silence gap between them; :func:`pack` builds a
window's waveform; :func:`segments_from_tokens` reads Whisper's ``<|t|> text <|t|>`` output;
:func:`attribute` gives each segment to the clip whose known span it falls in, and reports
a failure (the window is then decoded unpacked) where the timestamps do not fit the spans;
:func:`romanized` finds clips a window gave romanized text in a CJK-script language.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 30.0
MARGIN_S = 1.0  # room left at the end of a window (timestamps near 30 s are unreliable)
TIME_PRECISION = 0.02  # seconds per Whisper timestamp token
STRADDLE_S = 0.3  # a segment reaching this far into a clip's span (timestamp jitter is less) holds its text
END_SLACK_S = 1.0  # timestamps may run this far past the last clip's end
# Languages written in CJK script: a packed window that drifts into romanized output (Whisper does,
# on windows of many short clips) gives a clip Latin letters and no CJK character.
CJK_LANGUAGES = frozenset({"zh", "yue", "ja", "ko"})
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_LATIN = re.compile(r"[A-Za-z]")


@dataclass(frozen=True)
class Window:
    """Clips decoded together: input positions, start offsets (s) and durations (s)."""

    indices: tuple[int, ...]
    starts: tuple[float, ...]
    durations: tuple[float, ...]

    @property
    def spans(self) -> list[tuple[float, float]]:
        return [(s, s + d) for s, d in zip(self.starts, self.durations, strict=True)]

    @property
    def end(self) -> float:
        return self.starts[-1] + self.durations[-1]


@dataclass(frozen=True)
class Attribution:
    """A window's texts, one per clip, or why its timestamps cannot be trusted (``failure``)."""

    texts: tuple[str, ...]
    failure: str | None = None

    @classmethod
    def failed(cls, n: int, why: str) -> Attribution:
        return cls(("",) * n, why)


@dataclass(frozen=True)
class Segment:
    """One timestamped piece of a window's hypothesis (seconds from the window start)."""

    start: float
    end: float
    text: str


def plan_windows(
    durations: Sequence[float],
    gap_s: float = 1.0,
    max_s: float = WINDOW_S - MARGIN_S,
    longest_first: bool = False,
) -> list[Window]:
    """Greedy next-fit: add clips to the current window while ``end + gap + duration <= max_s``.

    A clip longer than ``max_s`` gets a window of its own. ``longest_first`` packs in
    descending duration (fewer, fuller windows); otherwise the input order is kept.

    >>> [w.indices for w in plan_windows([10, 10, 10, 40, 5], gap_s=1.0)]
    [(0, 1), (2,), (3,), (4,)]
    """
    order = (
        sorted(range(len(durations)), key=lambda i: -durations[i]) if longest_first else range(len(durations))
    )
    windows: list[Window] = []
    idx: list[int] = []
    starts: list[float] = []
    cursor = 0.0
    for i in order:
        d = float(durations[i])
        start = cursor + gap_s if idx else 0.0
        if idx and start + d > max_s:
            windows.append(Window(tuple(idx), tuple(starts), tuple(float(durations[j]) for j in idx)))
            idx, starts, start = [], [], 0.0
        idx.append(i)
        starts.append(start)
        cursor = start + d
    if idx:
        windows.append(Window(tuple(idx), tuple(starts), tuple(float(durations[j]) for j in idx)))
    return windows


def pack(waves: Sequence[np.ndarray], window: Window) -> np.ndarray:
    """The window's waveform: each clip at its start offset, silence (zeros) in between."""
    offsets = [round(s * SAMPLE_RATE) for s in window.starts]
    length = max(o + len(waves[i]) for o, i in zip(offsets, window.indices, strict=True))
    out = np.zeros(length, dtype=np.float32)
    for o, i in zip(offsets, window.indices, strict=True):
        out[o : o + len(waves[i])] = waves[i]
    return out


def segments_from_tokens(
    tokens: Sequence[int],
    timestamp_begin: int,
    special: set[int],
    decode: Callable[[list[int]], str],
    end_s: float,
) -> list[Segment]:
    """Segments of one hypothesis: text between timestamp tokens (ids >= ``timestamp_begin``).

    Text after the last timestamp (an unclosed segment, e.g. cut by the guard) ends at ``end_s``.
    """
    segments: list[Segment] = []
    start: float | None = None
    text: list[int] = []
    for tok in tokens:
        if tok >= timestamp_begin:
            t = (tok - timestamp_begin) * TIME_PRECISION
            if text:
                segments.append(Segment(start if start is not None else 0.0, t, decode(text)))
                text = []
            start = t
        elif tok not in special:
            text.append(tok)
    if text:
        first = start if start is not None else 0.0
        segments.append(Segment(first, max(first, end_s), decode(text)))
    return segments


def _reach(seg: Segment, span: tuple[float, float]) -> float:
    """Seconds of ``seg`` inside ``span`` (a zero-length segment: 1 s where its point lies inside)."""
    lo, hi = span
    if seg.end <= seg.start:
        return 1.0 if lo <= seg.start <= hi else 0.0
    return max(0.0, min(seg.end, hi) - max(seg.start, lo))


def _nearest(seg: Segment, spans: Sequence[tuple[float, float]]) -> int:
    """The clip whose span lies closest to the segment's middle (for a segment in a gap)."""
    mid = (seg.start + seg.end) / 2
    return min(range(len(spans)), key=lambda k: max(spans[k][0] - mid, mid - spans[k][1], 0.0))


def attribute(
    tokens: Sequence[int],
    timestamp_begin: int,
    special: set[int],
    decode: Callable[[list[int]], str],
    window: Window,
    speech: Sequence[bool] | None = None,
) -> Attribution:
    """One text per clip of ``window`` from its timestamped hypothesis, checked against the known spans.

    A segment goes to the one clip whose span it reaches into (by at least :data:`STRADDLE_S`,
    or half a shorter clip); one in a gap goes to the nearest clip. The window fails (and is
    to be decoded unpacked) when timestamps go backwards or run past the last clip by more
    than :data:`END_SLACK_S`, when a segment reaches into two clips (their texts are merged),
    when a clip with ``speech`` (default: every clip) gets no text, or when a silent one gets some.
    """
    spans = window.spans
    n = len(spans)
    speech = [True] * n if speech is None else list(speech)
    times = [round((t - timestamp_begin) * TIME_PRECISION, 2) for t in tokens if t >= timestamp_begin]
    back = next(((a, b) for a, b in itertools.pairwise(times) if b < a), None)
    if back is not None:
        return Attribution.failed(n, f"timestamps go backwards ({back[0]:.2f} s then {back[1]:.2f} s)")
    if times and times[-1] > window.end + END_SLACK_S:
        return Attribution.failed(
            n, f"timestamp {times[-1]:.2f} s past the last clip's end ({window.end:.2f} s)"
        )
    pieces: list[list[str]] = [[] for _ in spans]
    for seg in segments_from_tokens(tokens, timestamp_begin, special, decode, window.end):
        if not seg.text.strip():
            continue
        hits = [
            k for k, span in enumerate(spans) if _reach(seg, span) >= min(STRADDLE_S, (span[1] - span[0]) / 2)
        ]
        if len(hits) > 1:
            return Attribution.failed(
                n, f"segment {seg.start:.2f}-{seg.end:.2f} s straddles clips {', '.join(map(str, hits))}"
            )
        pieces[hits[0] if hits else _nearest(seg, spans)].append(seg.text)
    texts = tuple("".join(p).strip() for p in pieces)
    empty = [k for k in range(n) if speech[k] and not texts[k]]
    if empty:
        return Attribution.failed(n, f"clip(s) {', '.join(map(str, empty))} with speech got no text")
    if sum(map(bool, texts)) != sum(speech):
        return Attribution.failed(n, f"{sum(map(bool, texts))} clips got text, {sum(speech)} have speech")
    return Attribution(texts)


def romanized(texts: Sequence[str], language: str | None) -> list[int]:
    """Clips whose text has Latin letters and no CJK character, in a CJK-script ``language``.

    >>> romanized(["老板", "Rau-pan, tien", "OK 好"], "zh")
    [1]
    """
    if language not in CJK_LANGUAGES:
        return []
    return [k for k, t in enumerate(texts) if _LATIN.search(t) and not _CJK.search(t)]
