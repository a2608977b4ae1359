"""The models the tests use, one module per family, at two sizes, with random weights.

``build(name, out_dir, size=...)`` writes registered model ``name`` into ``out_dir`` (created):

- ``size="tiny"`` (the unit and e2e tiers, offline demos): the model's real configuration with
  small dimensions (2 layers, width 48-64), written by the library's own ``save``, so
  :func:`asr.models.load_model` reads it; CTC and funasr models take a character vocabulary
  from ``texts``.
- ``size="real"`` (the slow tier, ``tools/gpu_check``, ``benchmarks/footprint``): a replica of
  the publisher's checkpoint: the same file names, the real configuration values (dimensions,
  layer and head counts, vocabulary sizes, mel bins, CMVN shape, frontend settings), the real
  tokenizer files where they can be rebuilt from public sources, and random weights of the real
  shapes in the publisher's format and dtype. ``layers`` reduces only the layer counts (for fast
  tests); every other dimension stays real.

Where a real value or file cannot be reproduced offline the family module says so next to it:
- xlsr-53-zh: ``vocab.json`` is a placeholder of the real size (the character list is the
  publisher's, learned from Common Voice zh-CN);
- paraformer-large: ``tokens.json`` (8404 entries) and ``seg_dict`` are placeholders;
- sensevoice-small: the sentencepiece model is a placeholder of the real size (25,055 pieces)
  keeping the tag ids SenseVoiceSmall hard-codes;
- fun-asr-nano: no CTC (timestamp) decoder or its tokenizer; the Qwen3-0.6B tokenizer is a
  byte-level BPE of the real size (as below), see :mod:`tests.model_factory.fun_asr_nano`;
- qwen3-asr-*, glm-asr-nano: the byte-level BPEs (151,643 / 59,246 learned tokens) are built
  offline of the real size (:mod:`tests.model_factory.byte_bpe`), with the special tokens at
  their real ids (placeholders where a name is not public).

These live on the tests side because the library ships no test-only code.

>>> build("whisper-small", Path("/tmp/models/whisper-small"), size="real", layers=2)  # doctest: +SKIP
>>> build("paraformer-large", Path("/tmp/tiny-pf"), texts=["今天恰么子饭啰"])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

from asr.errors import ConfigError
from tests.model_factory import audio_llm, ctc, fun_asr_nano, funasr, whisper
from tests.model_factory.ctc import XLSR_LAYERS
from tests.model_factory.funasr import FUNASR_LAYERS, KINDS
from tests.model_factory.whisper import WHISPER

REAL_WRITERS: dict[str, Callable[..., Path]] = {
    **{name: partial(whisper.write_whisper, name) for name in WHISPER},
    "xlsr-53-zh": ctc.write_xlsr,
    "paraformer-large": funasr.write_paraformer,
    "sensevoice-small": funasr.write_sensevoice,
    "qwen3-asr-0.6b": partial(audio_llm.write_qwen3_asr, "qwen3-asr-0.6b"),
    "qwen3-asr-1.7b": partial(audio_llm.write_qwen3_asr, "qwen3-asr-1.7b"),
    "glm-asr-nano": audio_llm.write_glm_asr,
    "fun-asr-nano": fun_asr_nano.write_real,
}
NAMES = tuple(REAL_WRITERS)
# speech encoder + LLM models: their transformers model_type (the tiny builder's kind)
AUDIO_LLM_KINDS = {"qwen3-asr-0.6b": "qwen3_asr", "qwen3-asr-1.7b": "qwen3_asr", "glm-asr-nano": "glmasr"}
SIZES = ("tiny", "real")
FUNASR_KINDS = KINDS  # FunASRModel kind ("paraformer", "sensevoice") -> registry name


def real_layers(name: str) -> int:
    """The largest layer count of a model (what ``layers=None`` writes at the real size)."""
    if name in WHISPER:
        dims = WHISPER[name]
        return max(dims.encoder_layers, dims.decoder_layers)
    if name == "xlsr-53-zh":
        return XLSR_LAYERS
    if name in FUNASR_LAYERS:
        return FUNASR_LAYERS[name]
    if name in audio_llm.REAL_LAYERS:
        return audio_llm.REAL_LAYERS[name]
    if name == "fun-asr-nano":
        return fun_asr_nano.REAL_LAYERS
    raise KeyError(f"no model {name!r}; known: {', '.join(NAMES)}")


def build(
    name: str,
    out_dir: Path,
    size: str = "tiny",
    *,
    texts: list[str] | None = None,
    layers: int | None = None,
    seed: int = 0,
    feat_extract_norm: str = "layer",
) -> Path:
    """Write registered model ``name`` at ``size`` into ``out_dir`` (created) and return it.

    ``texts``: the character vocabulary of a tiny CTC or funasr model (Whisper ignores it).
    ``layers``: fewer layers at the real size. ``feat_extract_norm``: the tiny CTC model's
    feature-encoder norm ("group" is the wav2vec2-base variant that takes no padding mask).
    """
    if size not in SIZES:
        raise ConfigError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    if layers is not None and (size == "tiny" or layers < 1):
        raise ConfigError(f"layers must be at least 1 and only with size='real', got {layers} ({size})")
    if name in AUDIO_LLM_KINDS and size == "tiny":
        return audio_llm.build_tiny(Path(out_dir), texts or [], seed=seed, kind=AUDIO_LLM_KINDS[name])
    if name == "fun-asr-nano" and size == "tiny":
        return fun_asr_nano.build_tiny(Path(out_dir), texts or [], seed=seed)
    if name not in REAL_WRITERS:
        raise KeyError(f"no model {name!r}; known: {', '.join(NAMES)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if size == "real":
        return REAL_WRITERS[name](out_dir, layers=layers, seed=seed)
    if name in WHISPER:
        return whisper.build_tiny(name, out_dir, seed=seed)
    if not texts:
        raise ConfigError(f"a tiny {name} needs texts for its character vocabulary")
    if name == "xlsr-53-zh":
        return ctc.build_tiny(out_dir, texts, seed=seed, feat_extract_norm=feat_extract_norm)
    return funasr.build_tiny(name, out_dir, texts, seed=seed)


__all__ = ["FUNASR_KINDS", "NAMES", "SIZES", "build", "real_layers"]
