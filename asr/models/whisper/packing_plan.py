"""Packing short clips into one 30 s Whisper window, and splitting the timestamped text back.

Pure planning and bookkeeping, no model: :func:`plan_windows` places clips greedily (in the
order given, or longest first) with a silence gap between them; :func:`pack` builds a
window's waveform; :func:`segments_from_tokens` reads Whisper's ``<|t|> text <|t|>`` output;
:func:`split_segments` gives each segment to the clip whose span it overlaps most, cutting
a segment that straddles a boundary in proportion to its time on each side.
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
TOLERANCE_S = 0.2  # overlaps shorter than this do not count when a segment has a larger one
SNAP_CHARS = 2  # a proportional cut moves up to this far to a space or punctuation mark
_BREAK = re.compile(r"[\s,.!?;:，。！？；：、]")


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


def _owned_spans(spans: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Each clip's span widened to the middle of the gaps around it (the first and last open-ended)."""
    cuts = [(a[1] + b[0]) / 2 for a, b in itertools.pairwise(spans)]
    lows = [-np.inf, *cuts]
    highs = [*cuts, np.inf]
    return list(zip(lows, highs, strict=True))


def _overlaps(seg: Segment, owned: Sequence[tuple[float, float]]) -> list[float]:
    """Seconds of ``seg`` in each owned span; a zero-length segment counts 1 where its point lies."""
    if seg.end <= seg.start:
        return [1.0 if lo <= seg.start < hi else 0.0 for lo, hi in owned]
    raw = [max(0.0, min(seg.end, hi) - max(seg.start, lo)) for lo, hi in owned]
    if max(raw) >= TOLERANCE_S:
        raw = [r if r >= TOLERANCE_S else 0.0 for r in raw]
    return raw


def _cut(text: str, at: int) -> int:
    """``at``, moved to the nearest space or punctuation within :data:`SNAP_CHARS`."""
    for delta in sorted(range(-SNAP_CHARS, SNAP_CHARS + 1), key=abs):
        j = at + delta
        if 0 < j < len(text) and _BREAK.match(text[j - 1]):
            return j
    return at


def proportional_split(text: str, weights: Sequence[float]) -> list[str]:
    """Cut ``text`` into ``len(weights)`` consecutive parts with lengths proportional to the weights.

    >>> proportional_split("一二三四五六", [2.0, 1.0])
    ['一二三四', '五六']
    """
    total = sum(weights)
    parts, prev, acc = [], 0, 0.0
    for w in weights[:-1]:
        acc += w
        at = min(len(text), max(prev, _cut(text, round(len(text) * acc / total))))
        parts.append(text[prev:at])
        prev = at
    parts.append(text[prev:])
    return parts


def split_segments(segments: Sequence[Segment], spans: Sequence[tuple[float, float]]) -> list[str]:
    """One text per clip: each segment goes to the clip it overlaps most; one that straddles
    a gap is cut in proportion to its time on each side. Time in a gap counts for the
    nearer clip."""
    owned = _owned_spans(spans)
    pieces: list[list[str]] = [[] for _ in spans]
    for seg in segments:
        share = _overlaps(seg, owned)
        clips = [k for k, s in enumerate(share) if s > 0]
        for k, part in zip(clips, proportional_split(seg.text, [share[k] for k in clips]), strict=True):
            pieces[k].append(part)
    return ["".join(p).strip() for p in pieces]
