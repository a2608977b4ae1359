"""Clips longer than a model's window, cut into windows at their quietest moments.

Whisper sees 30 s at most; a longer clip it is given whole is cut there without a word (its
speech past 30 s is lost and the text it hallucinates on silence takes its place). Decoding code
cuts such clips with :func:`split_long` and joins the windows' texts; windows with no sound
at all are not decoded.

>>> import numpy as np
>>> wave = np.zeros(16000 * 70, dtype=np.float32)
>>> wave[16000 * 40 : 16000 * 41] = 0.5
>>> [round(len(w) / 16000, 1) for w in split_long(wave, 30.0)]
[29.9, 29.9, 10.1]
>>> [is_silent(w) for w in split_long(wave, 30.0)]
[True, False, True]
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
_FRAME = 1_600  # 100 ms: the quietest frame near a boundary is where a window ends
_SEARCH_S = 5.0  # ... looked for in the last 5 s of the window
SILENCE_RMS = 10 ** (-55 / 20)  # -55 dBFS: digital or near-digital silence, nothing to decode


def split_long(wave: np.ndarray, max_seconds: float, sample_rate: int = SAMPLE_RATE) -> list[np.ndarray]:
    """``wave`` as windows of at most ``max_seconds``, each ending at the quietest 100 ms frame of
    its last 5 s (the whole wave, alone, when it already fits)."""
    limit = int(max_seconds * sample_rate)
    windows, start = [], 0
    while len(wave) - start > limit:
        lo = start + max(limit - int(_SEARCH_S * sample_rate), _FRAME)
        hi = start + limit - _FRAME
        frames = [(float(np.sqrt(np.mean(wave[i : i + _FRAME] ** 2))), -i) for i in range(lo, hi + 1, _FRAME)]
        _, quietest = min(frames)  # the quietest; of equally quiet ones, the latest
        quietest = -quietest
        end = quietest + _FRAME // 2
        windows.append(wave[start:end])
        start = end
    windows.append(wave[start:])
    return windows


def is_silent(wave: np.ndarray) -> bool:
    """No sound worth decoding (RMS under -55 dBFS)."""
    return wave.size == 0 or float(np.sqrt(np.mean(np.square(wave, dtype=np.float64)))) < SILENCE_RMS
