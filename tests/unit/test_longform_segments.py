"""Segmenter: merging, splitting long speech at its quietest frame, streaming = one shot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asr.longform.segments import FRAME_SECONDS, Segmenter, SegmentOptions


def _run(
    probs: np.ndarray, energy: np.ndarray | None = None, options: SegmentOptions | None = None, chunks=None
):
    seg = Segmenter(options or SegmentOptions())
    energy = np.zeros(probs.size, np.float32) if energy is None else energy
    bounds = [0, *(chunks or []), probs.size]
    out = []
    for a, b in itertools.pairwise(bounds):
        out += seg.push(probs[a:b], energy[a:b])
    return out + seg.finish(probs.size)


def _speech(*runs: tuple[int, int], total: int) -> np.ndarray:
    probs = np.full(total, 0.05, np.float32)
    for a, b in runs:
        probs[a:b] = 0.95
    return probs


def test_spans_merge_until_the_piece_would_pass_max_seconds() -> None:
    # max 4 s = 125 frames, pad 2 -> 121 frames of speech and pauses per piece
    options = SegmentOptions(max_seconds=4.0, pad_ms=64, max_gap_seconds=2.0)
    probs = _speech((10, 50), (60, 100), (110, 150), (160, 170), total=200)
    assert _run(probs, options=options) == [(8, 102), (108, 172)]


def test_a_long_pause_ends_the_piece_and_short_blips_are_dropped() -> None:
    options = SegmentOptions(max_seconds=30.0, pad_ms=0, max_gap_seconds=1.0)  # 31 frames
    probs = _speech((10, 40), (60, 90), (140, 170), (200, 203), total=260)
    assert _run(probs, options=options) == [(10, 90), (140, 170)]


def test_speech_longer_than_the_context_is_cut_at_its_quietest_frame() -> None:
    options = SegmentOptions(max_seconds=10.0, pad_ms=0)  # 312 frames
    probs = _speech((0, 1000), total=1000)
    energy = np.zeros(1000, np.float32)
    energy[[250, 500, 700]] = -60.0  # breaths; 500 is outside the first window
    pieces = _run(probs, energy, options)
    assert pieces == [(0, 250), (250, 500), (500, 700), (700, 1000)]


def test_streaming_in_any_chunks_gives_the_pieces_of_one_pass() -> None:
    rng = np.random.default_rng(3)
    probs = np.repeat(rng.random(400) > 0.4, rng.integers(1, 40, 400))[:6000].astype(np.float32)
    energy = rng.normal(-30, 5, probs.size).astype(np.float32)
    options = SegmentOptions(max_seconds=8.0)
    whole = _run(probs, energy, options)
    chunks = sorted(rng.choice(np.arange(1, probs.size), 40, replace=False).tolist())
    assert _run(probs, energy, options, chunks) == whole
    assert len(whole) > 20
    limit = round(8.0 / FRAME_SECONDS)
    assert all(a < b <= limit + a for a, b in whole)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(whole))


@pytest.mark.parametrize("options", [SegmentOptions(max_seconds=0.5), SegmentOptions(threshold=0.2)])
def test_bad_options_are_refused(options: SegmentOptions) -> None:
    from asr.errors import ConfigError

    with pytest.raises(ConfigError):
        Segmenter(options)
