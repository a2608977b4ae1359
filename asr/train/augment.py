"""Speed perturbation (Kaldi style: tempo and pitch change together) with a seeded per-epoch draw.

>>> factor = draw_factor([0.9, 1.0, 1.1], seed=42, epoch=3, index=17)
>>> factor == draw_factor([0.9, 1.0, 1.1], seed=42, epoch=3, index=17)  # same inputs, same factor
True
>>> wave = np.zeros(16000, dtype=np.float32)
>>> abs(len(speed_perturb(wave, 1.1)) - len(wave) / 1.1) < 2
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr.models.checkpoint import SAMPLE_RATE


def draw_factor(factors: Sequence[float], seed: int, epoch: int, index: int) -> float:
    """The speed factor of utterance ``index`` in ``epoch``; 1.0 when ``factors`` is empty.

    Derived from ``(seed, epoch, index)`` only, so it does not depend on worker processes,
    batch order or a resumed run.
    """
    if not factors:
        return 1.0
    rng = np.random.default_rng([seed, epoch, index])
    return float(factors[int(rng.integers(len(factors)))])


def speed_perturb(wave: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play ``wave`` ``factor`` times as fast: read it as if sampled at ``rate * factor``, resample to ``rate``."""
    if factor == 1.0 or wave.size == 0:
        return wave
    import soxr  # 0.3 s to import: only speed perturbation needs it

    out = soxr.resample(wave, sample_rate * factor, sample_rate, quality="HQ")
    return np.ascontiguousarray(out, dtype=np.float32)
