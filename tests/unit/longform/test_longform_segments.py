"""Segmenter: merging, splitting long speech at its quietest frame, streaming = one shot."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from asr.longform.segments import FRAME_SECONDS, Segmenter, SegmentOptions, Span


def _run(
    probs: np.ndarray, energy: np.ndarray | None = None, options: SegmentOptions | None = None, chunks=None
):
    """``(start, end)`` of each piece (``removed`` pauses checked empty: these options keep them)."""
    spans = _spans(probs, energy, options or SegmentOptions(max_pause_seconds=None), chunks)
    assert all(not s.removed for s in spans)
    return [(s.start, s.end) for s in spans]


def _spans(probs: np.ndarray, energy: np.ndarray | None, options: SegmentOptions, chunks=None) -> list[Span]:
    seg = Segmenter(options)
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
    options = SegmentOptions(max_seconds=4.0, pad_ms=64, max_gap_seconds=2.0, max_pause_seconds=None)
    probs = _speech((10, 50), (60, 100), (110, 150), (160, 170), total=200)
    assert _run(probs, options=options) == [(8, 102), (108, 172)]


def test_a_long_pause_ends_the_piece_and_short_blips_are_dropped() -> None:
    options = SegmentOptions(
        max_seconds=30.0, pad_ms=0, max_gap_seconds=1.0, max_pause_seconds=None
    )  # 31 frames
    probs = _speech((10, 40), (60, 90), (140, 170), (200, 203), total=260)
    assert _run(probs, options=options) == [(10, 90), (140, 170)]


def test_speech_longer_than_the_context_is_cut_at_its_quietest_frame() -> None:
    options = SegmentOptions(max_seconds=10.0, pad_ms=0, max_pause_seconds=None)  # 312 frames
    probs = _speech((0, 1000), total=1000)
    energy = np.zeros(1000, np.float32)
    energy[[250, 500, 700]] = -60.0  # breaths; 500 is outside the first window
    pieces = _run(probs, energy, options)
    assert pieces == [(0, 250), (250, 500), (500, 700), (700, 1000)]


def test_streaming_in_any_chunks_gives_the_pieces_of_one_pass() -> None:
    rng = np.random.default_rng(3)
    probs = np.repeat(rng.random(400) > 0.4, rng.integers(1, 40, 400))[:6000].astype(np.float32)
    energy = rng.normal(-30, 5, probs.size).astype(np.float32)
    options = SegmentOptions(max_seconds=8.0, max_pause_seconds=None)
    whole = _run(probs, energy, options)
    chunks = sorted(rng.choice(np.arange(1, probs.size), 40, replace=False).tolist())
    assert _run(probs, energy, options, chunks) == whole
    assert len(whole) > 20
    limit = round(8.0 / FRAME_SECONDS)
    assert all(a < b <= limit + a for a, b in whole)
    assert all(b1 <= a2 for (_, b1), (a2, _) in itertools.pairwise(whole))


def test_long_pauses_are_cut_out_and_the_piece_is_counted_without_them() -> None:
    # max 4 s = 125 frames, pad 2: 121 frames of speech and kept pause; pauses kept up to 8 frames
    options = SegmentOptions(
        max_seconds=4.0, pad_ms=64, max_gap_seconds=2.0, max_pause_seconds=8 * FRAME_SECONDS
    )
    probs = _speech((10, 50), (60, 100), (130, 150), (160, 170), (250, 260), total=300)
    spans = _spans(probs, None, options)
    # 40 + 8 + 40 + 8 + 20 + 10 + 10 = 136 frames kept would pass 121: the piece ends after (130, 150)
    assert spans == [Span(8, 152, ((54, 56), (104, 126))), Span(158, 172, ()), Span(248, 262, ())]
    assert [s.kept for s in spans] == [120, 14, 14]
    # the same with pauses kept whole: the first piece ends after (60, 100)
    assert _run(probs, options=SegmentOptions(max_seconds=4.0, pad_ms=64, max_pause_seconds=None))[0] == (
        8,
        102,
    )


def test_cut_out_pauses_give_the_same_pieces_streamed_in_any_chunks() -> None:
    rng = np.random.default_rng(5)
    probs = np.repeat(rng.random(400) > 0.4, rng.integers(1, 40, 400))[:6000].astype(np.float32)
    energy = rng.normal(-30, 5, probs.size).astype(np.float32)
    options = SegmentOptions(max_seconds=8.0, max_pause_seconds=0.2)
    whole = _spans(probs, energy, options)
    chunks = sorted(rng.choice(np.arange(1, probs.size), 40, replace=False).tolist())
    assert _spans(probs, energy, options, chunks) == whole
    assert any(s.removed for s in whole)
    limit = int(8.0 / FRAME_SECONDS)
    for s in whole:
        assert 0 < s.kept <= limit and s.end - s.start <= 2 * limit
        edges = [s.start, *(x for cut in s.removed for x in cut), s.end]
        assert edges == sorted(edges) and len(set(edges)) == len(edges)


@pytest.mark.parametrize(
    "options",
    [SegmentOptions(max_seconds=0.5), SegmentOptions(threshold=0.2), SegmentOptions(max_pause_seconds=-1.0)],
)
def test_bad_options_are_refused(options: SegmentOptions) -> None:
    from asr.errors import ConfigError

    with pytest.raises(ConfigError):
        Segmenter(options)


def test_a_piece_is_batched_and_capped_by_the_audio_it_carries() -> None:
    from asr.longform.pipeline import Piece

    piece = Piece(0, 0, start=10.0, end=40.0, covered=30.0, wave=np.zeros(16000 * 25, np.float32))
    assert piece.duration == 25.0  # 5 s of pauses cut out: the guard's caps and batching use 25 s
