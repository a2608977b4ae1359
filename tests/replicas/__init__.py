"""Replicas of the published checkpoints of the eight registered models, with random weights.

``write_replica(name, out_dir)`` writes a folder laid out like the publisher's: the same file
names, the real configuration values (dimensions, layer and head counts, vocabulary sizes, mel
bins, CMVN shape, frontend settings), the real tokenizer files where they can be rebuilt from
public sources, and random weights of the real shapes in the publisher's format and dtype.
``layers`` reduces only the layer counts (for fast tests); every other dimension stays real.

Where a value or file cannot be reproduced offline the generator says so next to it:
- xlsr-53-zh: ``vocab.json`` is a placeholder of the real size (the character list is the
  publisher's, learned from Common Voice zh-CN);
- paraformer-large: ``tokens.json`` (8404 entries) and ``seg_dict`` are placeholders;
- sensevoice-small: the sentencepiece model is a placeholder of the real size (25,055 pieces)
  keeping the tag ids SenseVoiceSmall hard-codes.

>>> write_replica("whisper-small", Path("/tmp/replicas/whisper-small"), layers=2)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from tests.replicas.ctc import XLSR_LAYERS, write_xlsr
from tests.replicas.funasr import FUNASR_LAYERS, write_paraformer, write_sensevoice
from tests.replicas.whisper import WHISPER, write_whisper

NAMES = (*WHISPER, "xlsr-53-zh", "paraformer-large", "sensevoice-small")


def real_layers(name: str) -> int:
    """The largest layer count of a model (what ``layers=None`` writes)."""
    if name in WHISPER:
        dims = WHISPER[name]
        return max(dims.encoder_layers, dims.decoder_layers)
    if name == "xlsr-53-zh":
        return XLSR_LAYERS
    if name in FUNASR_LAYERS:
        return FUNASR_LAYERS[name]
    raise KeyError(f"no replica for {name!r}; known: {', '.join(NAMES)}")


def write_replica(name: str, out_dir: Path, *, layers: int | None = None, seed: int = 0) -> Path:
    """Write the replica of registered model ``name`` into ``out_dir`` (created) and return it."""
    if layers is not None and layers < 1:
        raise ValueError(f"layers must be at least 1, got {layers}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if name in WHISPER:
        return write_whisper(name, out_dir, layers=layers, seed=seed)
    if name == "xlsr-53-zh":
        return write_xlsr(out_dir, layers=layers, seed=seed)
    if name == "paraformer-large":
        return write_paraformer(out_dir, layers=layers, seed=seed)
    if name == "sensevoice-small":
        return write_sensevoice(out_dir, layers=layers, seed=seed)
    raise KeyError(f"no replica for {name!r}; known: {', '.join(NAMES)}")


__all__ = ["NAMES", "real_layers", "write_replica"]
