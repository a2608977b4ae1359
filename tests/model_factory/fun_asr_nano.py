"""A tiny randomly initialised Fun-ASR-Nano in the publisher's funasr layout.

The layout of FunAudioLLM/Fun-ASR-Nano-2512: ``config.yaml`` (``model: FunASRNano``, a
SenseVoiceEncoderSmall audio encoder, a ``Transformer`` audio adaptor, a Qwen3 LLM built from
the folder named by ``llm_conf.init_param_path``, a ``HuggingfaceTokenizer`` reading the same
folder, 80-bin fbank with LFR 7/6), ``model.pt`` (all weights, LLM included) and the LLM folder
``Qwen3-0.6B/`` (``config.json`` + tokenizer files). The values are the release's with small
dimensions. Not reproduced: the CTC decoder and its ``multilingual.tiktoken`` tokenizer (only
used for timestamps; funasr skips them when ``ctc_decoder`` is absent) and the 151k-token Qwen3
tokenizer (a byte-level BPE trained on ``texts`` with Qwen3's special tokens instead).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from asr.models.funasr.fun_asr_nano import LLM_DIR, FunASRNanoASR
from tests.model_factory.audio_llm import LLM_DIMS, _bpe
from tests.model_factory.funasr import FRONTEND_CONF

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
