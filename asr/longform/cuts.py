"""One media file as a stream of speech pieces with their audio (decode -> VAD -> segmenter).

Only the audio that a piece still open can use is kept: from :meth:`Segmenter.keep_from`
to the newest block, so a file of any length runs in memory bounded by the longest piece
(``max_seconds``, or twice that on the file's clock when pauses are cut out of pieces).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.data.audio import TARGET_SAMPLE_RATE
from asr.longform.media import stream_audio
from asr.longform.segments import Segmenter, SegmentOptions
from asr.longform.vad import FRAME_SAMPLES, StreamingVAD, frame_energy


@dataclass
class Cut:
    """One piece: ``start``/``end`` in samples from the start of the file, and its audio (long pauses cut out)."""

    start: int
    end: int
    wave: np.ndarray

    @property
    def seconds(self) -> tuple[float, float]:
        return self.start / TARGET_SAMPLE_RATE, self.end / TARGET_SAMPLE_RATE


class CutStream:
    """Iterate to get the file's :class:`Cut` in order; :attr:`samples` is its length once done."""

    def __init__(self, path: Path, vad: StreamingVAD, options: SegmentOptions) -> None:
        self.path, self.vad, self.options = path, vad, options
        self.samples = 0
        self.peak_buffer = 0  # most samples held at once (for tests and logs)

    def __iter__(self) -> Iterator[Cut]:
        self.vad.reset()
        segmenter = Segmenter(self.options)
        buffer, base = np.zeros(0, np.float32), 0  # audio from sample ``base`` on
        blocks = stream_audio(self.path)
        block: np.ndarray | None = next(blocks, None)
        while block is not None:
            following = next(blocks, None)
            last = following is None
            self.samples += block.size
            buffer = np.concatenate([buffer, block])
            self.peak_buffer = max(self.peak_buffer, buffer.size)
            probs = self.vad.push(block, last=last)
            done = segmenter.frame * FRAME_SAMPLES - base  # first sample not yet scored
            scored = buffer[done : done + probs.size * FRAME_SAMPLES]
            energy = frame_energy(np.pad(scored, (0, probs.size * FRAME_SAMPLES - scored.size)))
            spans = segmenter.push(probs, energy)
            if last:
                spans += segmenter.finish()
            for span in spans:
                a, b = span.start * FRAME_SAMPLES, min(span.end * FRAME_SAMPLES, self.samples)
                yield Cut(a, b, _audio(buffer, base, a, b, span.removed))
            keep = min(segmenter.keep_from() * FRAME_SAMPLES, self.samples)
            if keep > base:
                buffer, base = buffer[keep - base :], keep
            block = following


def _audio(buffer: np.ndarray, base: int, a: int, b: int, removed: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Samples ``a`` to ``b`` of the file (``buffer`` starts at ``base``) without the ``removed`` frames."""
    bounds = [a, *(x for cut in removed for x in (cut[0] * FRAME_SAMPLES, cut[1] * FRAME_SAMPLES)), b]
    parts = [buffer[lo - base : hi - base] for lo, hi in zip(bounds[::2], bounds[1::2], strict=True)]
    return np.concatenate(parts) if len(parts) > 1 else parts[0].copy()
