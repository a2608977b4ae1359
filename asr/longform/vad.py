"""silero-vad over a stream: one speech probability per 32 ms frame, state carried across blocks.

The weights ship inside the ``silero-vad`` wheel (no download). Its "sequence" ONNX export
scores a whole block of frames in one call, with the same LSTM state and 64-sample context
as the frame-by-frame model, so a stream gives the probabilities the whole file would.

>>> vad = StreamingVAD()
>>> probs = vad.push(np.zeros(16000, np.float32))          # 1 s of silence: 31 whole frames
>>> len(probs), bool(probs.max() < 0.5), len(vad.push(np.zeros(0, np.float32)))
(31, True, 0)
"""

from __future__ import annotations

from importlib import resources

import numpy as np

FRAME_SAMPLES = 512  # silero-vad's window at 16 kHz (32 ms)
CONTEXT_SAMPLES = 64
_MAX_FRAMES = 512


def _model_path() -> str:
    return str(resources.files("silero_vad.data").joinpath("silero_vad_16k_sequence.onnx"))


class StreamingVAD:
    """Feed 16 kHz blocks with :meth:`push`; each returns the probabilities of the frames completed."""

    def __init__(self, threads: int = 1) -> None:
        import onnxruntime as ort  # about 1 s to import: only asr transcribe / segment need it

        options = ort.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(
            _model_path(), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.reset()

    def reset(self) -> None:
        """Start a new stream."""
        self._hidden = np.zeros((1, 1, 128), np.float32)
        self._cell = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, np.float32)
        self._left = np.zeros(0, np.float32)

    def push(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        """Probabilities of the whole frames now available (``last``: zero-pad a final partial frame)."""
        data = np.concatenate([self._left, samples.astype(np.float32, copy=False)])
        whole = data.size // FRAME_SAMPLES
        if last and data.size % FRAME_SAMPLES:
            data = np.pad(data, (0, FRAME_SAMPLES - data.size % FRAME_SAMPLES))
            whole += 1
        self._left = data[whole * FRAME_SAMPLES :]
        out = [np.zeros(0, np.float32)]
        for first in range(0, whole, _MAX_FRAMES):
            count = min(_MAX_FRAMES, whole - first)
            frames = data[first * FRAME_SAMPLES : (first + count) * FRAME_SAMPLES].reshape(
                count, FRAME_SAMPLES
            )
            contexts = np.empty((count, CONTEXT_SAMPLES), np.float32)
            contexts[0] = self._context
            contexts[1:] = frames[:-1, -CONTEXT_SAMPLES:]
            self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
            probs, self._hidden, self._cell = self._session.run(
                ["speech_probs", "hn", "cn"],
                {"input": np.concatenate([contexts, frames], axis=1), "h": self._hidden, "c": self._cell},
            )
            out.append(np.asarray(probs, np.float32).reshape(-1))
        return np.concatenate(out)


def frame_energy(samples: np.ndarray) -> np.ndarray:
    """Log energy (dB) of each whole frame of ``samples``, for choosing where to cut inside speech."""
    whole = samples.size // FRAME_SAMPLES
    frames = samples[: whole * FRAME_SAMPLES].reshape(whole, FRAME_SAMPLES).astype(np.float64)
    return (10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)).astype(np.float32)
