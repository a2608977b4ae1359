"""Whisper models: ``size="real"`` in the layout of the Hub's ``openai/whisper-*`` repositories,
``size="tiny"`` the same configuration with small dimensions, saved by the library.

Real files: ``config.json``, ``generation_config.json``, ``model.safetensors``,
``preprocessor_config.json`` and the tokenizer files (``tokenizer.json``, ``vocab.json``,
``merges.txt``, ``tokenizer_config.json``, ``special_tokens_map.json``, ``added_tokens.json``,
``normalizer.json``). The tokenizer and the generation config are the library's offline builds
(:mod:`asr.models.whisper.assets`: openai-whisper's tiktoken ranks, OpenAI's special-token order,
``<|yue|>`` for the 100-language large-v3 vocabulary); ``normalizer.json`` is openai-whisper's
``normalizers/english.json``; the alignment heads are openai-whisper's ``_ALIGNMENT_HEADS``.

Weights: random, the real shapes; fp32 for tiny/base/small and fp16 for large-v3 and
large-v3-turbo, as their ``model.safetensors`` on the Hub. large-v3 also ships
``model.fp32-0000{1,2}-of-00002.safetensors`` (and pytorch/flax copies): not replicated, since
transformers loads ``model.safetensors`` first.

Tiny: 2 layers of width 64 (2 heads, FFN 128) with the model's vocabulary, mel bins, positions and
special-token ids, the real multilingual tokenizer, random weights, written by ``WhisperASR.save``.
"""

from __future__ import annotations

import ast
import base64
import gzip
import importlib.util
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.models.registry import get_spec
from asr.models.whisper.assets import (
    _asset,
    timestamp_tokens,
    vocab_layout,
    whisper_generation_config,
    whisper_processor,
)
from asr.models.whisper.model import WhisperASR
from tests.model_factory.common import reduce, write_json


@dataclass(frozen=True)
class WhisperDims:
    d_model: int
    encoder_layers: int
    decoder_layers: int
    heads: int
    ffn: int
    vocab_size: int
    num_mel_bins: int
    dtype: str  # what model.safetensors on the Hub holds
    openai_name: str  # key of openai-whisper's _ALIGNMENT_HEADS


# openai-whisper's ModelDimensions of each size (whisper/__init__.py checkpoints), as converted by
# transformers' convert_openai_to_hf.py.
WHISPER: dict[str, WhisperDims] = {
    "whisper-tiny": WhisperDims(384, 4, 4, 6, 1536, 51865, 80, "float32", "tiny"),
    "whisper-base": WhisperDims(512, 6, 6, 8, 2048, 51865, 80, "float32", "base"),
    "whisper-small": WhisperDims(768, 12, 12, 12, 3072, 51865, 80, "float32", "small"),
    "whisper-large-v3-turbo": WhisperDims(1280, 32, 4, 20, 5120, 51866, 128, "float16", "large-v3-turbo"),
    "whisper-large-v3": WhisperDims(1280, 32, 32, 20, 5120, 51866, 128, "float16", "large-v3"),
}


# Sources of the config.json values: the Hub files as vendored in painebenjamin/taproot
# (src/taproot/tasks/recognition/audio/transcription/whisper/{tiny,base,small,large,turbo/large}/
# model.py, ``get_default_config``; that copy drops ``_name_or_path`` and ``transformers_version``)
# and, for large-v3, a printout of the loaded config in a public training script (pad_token_id
# 50256, num_mel_bins 128, vocab_size 51866). large-v3-turbo was converted with transformers'
# current convert_openai_to_hf.py: pad/bos/eos 50257 (``endoftext_id = 50257 if n_vocab > 51865``)
# and WhisperConfig's default begin_suppress_tokens [220, 50256], no max_length.
# The 2022 conversions (tiny/base/small) predate the SpecAugment / classifier / median-filter
# keys and carry ``forced_decoder_ids`` and ``suppress_tokens`` (added in write_whisper).
_LATER_KEYS = {  # written by the 2023+ conversions (large-v3, large-v3-turbo) only
    "apply_spec_augment": False,
    "classifier_proj_size": 256,
    "mask_feature_length": 10,
    "mask_feature_min_masks": 0,
    "mask_feature_prob": 0.0,
    "mask_time_length": 10,
    "mask_time_min_masks": 2,
    "mask_time_prob": 0.05,
    "median_filter_width": 7,
    "use_weighted_layer_sum": False,
}


def config_json(name: str, layers: int | None = None) -> dict[str, Any]:
    """``config.json`` as on the Hub (keys the 2022/2023/2024 conversions wrote, real values)."""
    d = WHISPER[name]
    enc, dec = reduce(d.encoder_layers, layers), reduce(d.decoder_layers, layers)
    large = d.vocab_size == 51866
    turbo = name == "whisper-large-v3-turbo"
    config: dict[str, Any] = {
        "_name_or_path": f"openai/{name}",  # not confirmed for turbo
        "activation_dropout": 0.0,
        "activation_function": "gelu",
        "architectures": ["WhisperForConditionalGeneration"],
        "attention_dropout": 0.0,
        "begin_suppress_tokens": [220, 50256] if turbo else [220, 50257],
        "bos_token_id": 50257,
        "d_model": d.d_model,
        "decoder_attention_heads": d.heads,
        "decoder_ffn_dim": d.ffn,
        "decoder_layerdrop": 0.0,
        "decoder_layers": dec,
        "decoder_start_token_id": 50258,
        "dropout": 0.0,
        "encoder_attention_heads": d.heads,
        "encoder_ffn_dim": d.ffn,
        "encoder_layerdrop": 0.0,
        "encoder_layers": enc,
        "eos_token_id": 50257,
        "init_std": 0.02,
        "is_encoder_decoder": True,
        "max_length": 448,
        "max_source_positions": 1500,
        "max_target_positions": 448,
        "model_type": "whisper",
        "num_hidden_layers": enc,
        "num_mel_bins": d.num_mel_bins,
        # large-v3's config.json says 50256 (a BPE token; generation uses generation_config's
        # 50257); turbo's says 50257 (sources above)
        "pad_token_id": 50256 if large and not turbo else 50257,
        "scale_embedding": False,
        "torch_dtype": d.dtype,
        # transformers_version: 4.27.0.dev0 for the 2022 files, 4.36.0.dev0 for large-v3 and
        # 4.46.0.dev0 for turbo are recalled from the Hub files, not confirmed (the vendored
        # copies drop the key)
        "transformers_version": "4.46.0.dev0" if turbo else "4.36.0.dev0" if large else "4.27.0.dev0",
        "use_cache": True,
        "vocab_size": d.vocab_size,
    }
    if large:
        config.update(_LATER_KEYS)
    else:
        # the early conversions stored the decoding prompt in config.json
        config["forced_decoder_ids"] = [[1, 50259], [2, 50359], [3, 50363]]
    if turbo:
        del config["max_length"]
    return dict(sorted(config.items()))


def config_suppress_tokens(name: str, generation_suppress: list[int]) -> list[int] | None:
    """``suppress_tokens`` of the 2022 ``config.json`` files (None for large-v3 / turbo, which have
    none): the generation config's list, except that whisper-small's config.json lacks
    ``<|translate|>`` 50358 and ``<|transcribe|>`` 50359 (86 ids; tiny and base: 88, as in their
    generation_config.json), per the vendored copies cited above."""
    if WHISPER[name].vocab_size == 51866:
        return None
    drop = {50358, 50359} if name == "whisper-small" else set()
    return [t for t in generation_suppress if t not in drop]


def openai_alignment_heads() -> dict[str, bytes]:
    """openai-whisper's ``_ALIGNMENT_HEADS``, read from its source: importing the package needs
    numba, which a GPU host given only the check's wheelhouse lacks."""
    spec = importlib.util.find_spec("whisper")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("No module named 'whisper' (pip install openai-whisper)", name="whisper")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", "") == "_ALIGNMENT_HEADS" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise KeyError(f"no _ALIGNMENT_HEADS in {spec.origin}")


def alignment_heads(name: str, decoder_layers: int) -> list[list[int]]:
    """OpenAI's cross-attention heads for timestamps (openai-whisper ``_ALIGNMENT_HEADS``)."""
    d = WHISPER[name]
    raw = gzip.decompress(base64.b85decode(openai_alignment_heads()[d.openai_name]))
    mask = np.frombuffer(raw, dtype=bool).reshape(d.decoder_layers, d.heads)
    return [[int(layer), int(head)] for layer, head in np.argwhere(mask) if layer < decoder_layers]


def _processor(name: str) -> Any:
    """The offline ``WhisperProcessor`` of ``name``'s vocabulary and mel bins."""
    d = WHISPER[name]
    multilingual, num_languages = vocab_layout(d.vocab_size)
    return whisper_processor(
        num_mel_bins=d.num_mel_bins, multilingual=multilingual, num_languages=num_languages
    )


# the tiny model: these dimensions, the rest of config.json's values as WhisperConfig's defaults
TINY_DIMS = {
    "d_model": 64,
    "encoder_layers": 2,
    "decoder_layers": 2,
    "encoder_attention_heads": 2,
    "decoder_attention_heads": 2,
    "encoder_ffn_dim": 128,
    "decoder_ffn_dim": 128,
}
_TINY_KEEPS = (  # taken from the real config.json
    "vocab_size",
    "num_mel_bins",
    "max_source_positions",
    "max_target_positions",
    "decoder_start_token_id",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
)


def build_tiny(name: str, out_dir: Path, *, seed: int = 0) -> Path:
    """A randomly initialised 2-layer ``name`` with the real tokenizer, saved by ``WhisperASR.save``."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    real = config_json(name)
    torch.manual_seed(seed)
    processor = _processor(name)
    config = WhisperConfig(**{key: real[key] for key in _TINY_KEEPS}, **TINY_DIMS)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = whisper_generation_config(config)
    WhisperASR(model, processor, get_spec(name), "cpu", torch.float32).save(out_dir)
    return out_dir


def write_whisper(name: str, out_dir: Path, *, layers: int | None = None, seed: int = 0) -> Path:
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    d = WHISPER[name]
    config_data = config_json(name, layers)
    write_json(out_dir / "config.json", config_data)
    config = WhisperConfig.from_pretrained(out_dir)
    torch.manual_seed(seed)
    model = WhisperForConditionalGeneration(config).eval()
    if d.dtype == "float16":
        model = model.half()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        # save_pretrained handles the tied proj_out/embed_tokens as the Hub files do (one tensor)
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.move(str(Path(tmp) / "model.safetensors"), out_dir / "model.safetensors")
    del model

    processor = _processor(name)
    _write_tokenizer_files(processor, out_dir)
    shutil.copyfile(_asset("../normalizers/english.json"), out_dir / "normalizer.json")
    # reduced layers may leave none of OpenAI's heads: then the library's default (upper half)
    generation = whisper_generation_config(config, alignment_heads(name, config.decoder_layers) or None)
    generation.save_pretrained(out_dir)
    suppress = config_suppress_tokens(name, list(generation.suppress_tokens))
    if suppress is not None:
        config_data = dict(sorted({**config_data, "suppress_tokens": suppress}.items()))
    # save_pretrained may have rewritten config.json (processor/generation savers do not, but be sure)
    write_json(out_dir / "config.json", config_data)
    return out_dir


def _write_tokenizer_files(processor: Any, out_dir: Path) -> None:
    """The Hub's processor files: ``preprocessor_config.json`` (no ``processor_config.json``, which
    the 2022/2023 repositories predate), ``tokenizer.json`` + ``tokenizer_config.json`` (written by
    the installed transformers, so in its format, not byte-equal to the Hub's older files), and
    the slow-tokenizer files ``vocab.json``, ``merges.txt``, ``added_tokens.json`` and
    ``special_tokens_map.json`` the Hub repositories also carry."""
    processor.feature_extractor.save_pretrained(out_dir)
    tok = processor.tokenizer
    tok.save_pretrained(out_dir)
    stray = out_dir / "processor_config.json"
    if stray.is_file():
        stray.unlink()
    model = json.loads((out_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]
    write_json(out_dir / "vocab.json", model["vocab"], indent=None)
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    added = dict(sorted(tok.get_added_vocab().items(), key=lambda kv: kv[1]))
    write_json(out_dir / "added_tokens.json", added)
    timestamps = set(timestamp_tokens())
    specials = [t for t in added if t not in timestamps]
    write_json(
        out_dir / "special_tokens_map.json",
        {
            "additional_special_tokens": [t for t in specials if t != "<|endoftext|>"],
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        },
    )
