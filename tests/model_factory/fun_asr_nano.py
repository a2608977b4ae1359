"""A tiny randomly initialised Fun-ASR-Nano in the publisher's funasr layout.

The layout of FunAudioLLM/Fun-ASR-Nano-2512: ``config.yaml`` (``model: FunASRNano``, a
SenseVoiceEncoderSmall audio encoder, a ``Transformer`` audio adaptor, a Qwen3 LLM built from
the folder named by ``llm_conf.init_param_path``, a ``HuggingfaceTokenizer`` reading the same
folder, 80-bin fbank with LFR 7/6), ``model.pt`` (all weights, LLM included) and the LLM folder
``Qwen3-0.6B/`` (``config.json`` + tokenizer files). The values are the release's with small
dimensions. Not reproduced: the CTC decoder and its ``multilingual.tiktoken`` tokenizer (only
used for timestamps; funasr skips them when ``ctc_decoder`` is absent) and the 151k-token Qwen3
tokenizer (a byte-level BPE trained on ``texts`` with Qwen3's special tokens instead).

``write_real`` (``size="real"``) writes the release at its real size, random weights.
Sources of the real values (public, checked against each other):
- audio encoder: SenseVoiceSmall's encoder (SenseVoiceEncoderSmall, 512 wide, 4 heads, FFN 2048,
  50 SAN-M blocks + 20 tp blocks, FSMN kernel 11), as ``tests.model_factory.funasr`` writes it;
  Fun-ASR-Nano's config.yaml names the same class with ``num_blocks: 50`` (quoted by third-party
  analyses of the release, which count 221 M encoder parameters in 70 layers);
- audio adaptor: funasr ``llm_asr.adaptor.Transformer`` with ``downsample_rate: 1``,
  ``use_low_frame_rate: true``, ``ffn_dim: 2048``, ``encoder_dim: 512``, ``llm_dim: 1024``,
  ``n_layer: 2`` (the release's audio_adaptor_conf as quoted by fine-tuning guides; 12.6 M
  parameters). Its attention head count is not in the quoted config: funasr's default 8 is used
  (it changes no weight shape);
- LLM: Qwen/Qwen3-0.6B's config.json (1024 wide, FFN 3072, 28 layers, 16/8 heads of 128,
  151,936 embeddings tied to the output, rope_theta 1e6, 40,960 positions), in the folder
  ``Qwen3-0.6B/`` that ``llm_conf.init_param_path`` names; ``llm_dtype: bf16`` as released;
- frontend: 80-bin fbank, 25/10 ms hamming, LFR 7/6 at 16 kHz, no CMVN file;
- ``model.pt``: every weight (``audio_encoder.*``, ``audio_adaptor.*``, ``llm.*``) in bf16, a
  plain state dict (the release is about 2 GB: 985 M parameters counting the tied output matrix).
Not reproduced: the CTC decoder (``ctc_decoder: Transformer``) and its ``multilingual.tiktoken``
tokenizer, used only for timestamps (funasr drops the branch when its weights are absent); the
Qwen3 tokenizer's learned merges (a byte-level BPE of the same 151,643-token size with the 26
added tokens at their real ids 151643-151668 instead, :mod:`tests.model_factory.byte_bpe`) and
its chat template (funasr builds the ChatML prompt itself and never applies it).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from asr.models.checkpoint import cast_state
from asr.models.funasr.checkpoint import CONFIG_FILE, NATIVE_WEIGHTS_FILE
from asr.models.funasr.fun_asr_nano import LLM_DIR, FunASRNanoASR
from tests.model_factory.audio_llm import LLM_DIMS, QWEN3_ADDED, QWEN3_BPE_SIZE, _bpe, _real_tokenizer
from tests.model_factory.common import reduce, write_json
from tests.model_factory.funasr import FRONTEND_CONF, sensevoice_config

QWEN3_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# the speech-LLMs' tiny Qwen3 (untied embeddings, so random output varies; the real Qwen3-0.6B ties them)
LLM_CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "model_type": "qwen3",
    **LLM_DIMS,
    "rope_theta": 1000000,
    "rms_norm_eps": 1e-6,
    "hidden_act": "silu",
    "torch_dtype": "float32",
}


def tiny_config() -> dict[str, Any]:
    """config.yaml of the release at small dimensions (encoder 2 blocks of width 32, LLM width 32)."""
    return {
        "model": "FunASRNano",
        "model_conf": {"lsm_weight": 0.1, "length_normalized_loss": True},
        "audio_encoder": "SenseVoiceEncoderSmall",
        "audio_encoder_conf": {
            "output_size": 32,
            "attention_heads": 2,
            "linear_units": 64,
            "num_blocks": 2,
            "tp_blocks": 1,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "attention_dropout_rate": 0.0,
            "input_layer": "pe_linear",
            "pos_enc_class": "SinusoidalPositionEncoder",
            "normalize_before": True,
            "kernel_size": 11,
            "sanm_shfit": 0,
            "selfattention_layer_type": "sanm",
            "freeze": True,
        },
        "llm": "Qwen3-0.6b",
        "llm_conf": {
            "hub": "hf",
            "freeze": True,
            "llm_dtype": "fp32",
            "init_param_path": LLM_DIR,
            "use_lora": False,
        },
        "audio_adaptor": "Transformer",
        "audio_adaptor_conf": {
            "downsample_rate": 1,
            "use_low_frame_rate": True,
            "ffn_dim": 64,
            "llm_dim": 32,
            "encoder_dim": 32,
            "n_layer": 1,
            "attention_heads": 2,
            "freeze": False,
        },
        "frontend": "WavFrontend",
        "frontend_conf": dict(FRONTEND_CONF, cmvn_file=None),  # SenseVoice's frontend, no CMVN file
        "tokenizer": "HuggingfaceTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "init_param_path": LLM_DIR},
        "dataset_conf": {"sys_prompt": True, "do_think": True},
    }


def write_llm_dir(llm_dir: Path, texts: list[str]) -> None:
    """A Qwen3 LLM folder as funasr reads it: ``config.json`` and tokenizer files (weights live in model.pt)."""
    from transformers import Qwen2TokenizerFast

    vocab, merges = _bpe(texts)
    tok = Qwen2TokenizerFast(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    tok.add_tokens(QWEN3_SPECIAL, special_tokens=True)
    llm_dir.mkdir(parents=True, exist_ok=True)
    tok.save_pretrained(str(llm_dir))
    ids = tok.convert_tokens_to_ids
    config = {
        **LLM_CONFIG,
        "vocab_size": len(tok),
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "pad_token_id": ids("<|endoftext|>"),
    }
    (llm_dir / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def build_tiny(out_dir: Path, texts: list[str], seed: int = 0) -> Path:
    """Write a tiny random Fun-ASR-Nano (config.yaml, LLM folder, weights) through the family's ``save``."""
    import yaml

    from asr.models.registry import get_spec

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_llm_dir(out_dir / LLM_DIR, texts)
    (out_dir / "config.yaml").write_text(
        yaml.safe_dump(tiny_config(), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    torch.manual_seed(seed)
    spec = replace(get_spec("fun-asr-nano"), description="tiny random Fun-ASR-Nano (tests)")
    model = FunASRNanoASR.load(out_dir, spec, torch.device("cpu"), torch.float32, random_init=True)
    model.save(out_dir)
    return out_dir


# --- real-size replica ------------------------------------------------------------------------

QWEN3_0_6B = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 1024,
    "initializer_range": 0.02,
    "intermediate_size": 3072,
    "max_position_embeddings": 40960,
    "max_window_layers": 28,
    "model_type": "qwen3",
    "num_attention_heads": 16,
    "num_hidden_layers": 28,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}
REAL_LAYERS = 70  # the encoder's 50 + 20 blocks (the LLM has 28)
QWEN3_BASE_ADDED = {i: t for i, t in QWEN3_ADDED.items() if i <= 151668}  # Qwen3-0.6B's own (no audio tokens)


def real_config(layers: int | None = None) -> dict[str, Any]:
    """The release's config.yaml; ``layers`` caps the encoder's block counts (the adaptor keeps its 2)."""
    config = tiny_config()
    encoder = sensevoice_config(layers)["encoder_conf"]
    config["audio_encoder_conf"] = {**encoder, "freeze": True}
    config["llm_conf"] = {**config["llm_conf"], "llm_dtype": "bf16"}
    config["audio_adaptor_conf"] = {
        "downsample_rate": 1,
        "use_low_frame_rate": True,
        "ffn_dim": 2048,
        "llm_dim": 1024,
        "encoder_dim": 512,
        "n_layer": 2,
        "freeze": False,
    }
    return config


def write_real(out_dir: Path, layers: int | None = None, seed: int = 0) -> Path:
    """A real-size Fun-ASR-Nano-2512 replica (config.yaml, ``Qwen3-0.6B/``, bf16 ``model.pt``), random weights."""
    import yaml

    from asr.models.registry import get_spec

    out_dir = Path(out_dir)
    llm_dir = out_dir / LLM_DIR
    llm_dir.mkdir(parents=True, exist_ok=True)
    tok = _real_tokenizer(QWEN3_BPE_SIZE, QWEN3_BASE_ADDED, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    tok.save_pretrained(str(llm_dir))
    write_json(llm_dir / "config.json", {**QWEN3_0_6B, "num_hidden_layers": reduce(28, layers)})
    (out_dir / CONFIG_FILE).write_text(
        yaml.safe_dump(real_config(layers), allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    torch.manual_seed(seed)
    spec = get_spec("fun-asr-nano")
    model = FunASRNanoASR.load(out_dir, spec, torch.device("cpu"), torch.float32, random_init=True)
    torch.save(cast_state(model.net.state_dict(), torch.bfloat16), str(out_dir / NATIVE_WEIGHTS_FILE))
    return out_dir
