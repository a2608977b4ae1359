"""Tiny randomly initialised speech-LLMs (Qwen3-ASR, GLM-ASR) in their transformers layouts.

The configs are the real ones (``Qwen3ASRConfig``, ``GlmAsrConfig``: same sub-model types,
feature extractors, audio/text special tokens and chat-template layout) at small dimensions. The
tokenizer is a byte-level BPE trained on the given texts (the real ones are 150k/59k-token
byte-level BPEs that cannot be rebuilt offline) with the models' special tokens; the chat
templates are written here in the layout transformers' Qwen3-ASR converter and GLM-ASR's
``inference.py`` use. Output embeddings are untied so a random model does not just repeat its
last input token.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import torch

from asr.models.audio_llm.model import AudioLLMASR

# ChatML as Qwen3-ASR renders it: system = context, user = audio, assistant prefilled with
# "language <Name><asr_text>" (continue_final_message) or opened by add_generation_prompt.
QWEN3_ASR_TEMPLATE = (
    "{% set ns = namespace(system='', audio='') %}"
    "{% for m in messages %}{% for c in m.content %}"
    "{% if m.role == 'system' and c.type == 'text' %}{% set ns.system = ns.system + c.text %}{% endif %}"
    "{% if c.type == 'audio' %}{% set ns.audio = ns.audio + '<|audio_start|><|audio_pad|><|audio_end|>' %}{% endif %}"
    "{% endfor %}{% endfor %}"
    "<|im_start|>system\n{{ ns.system }}<|im_end|>\n<|im_start|>user\n{{ ns.audio }}<|im_end|>\n"
    "{% for m in messages if m.role == 'assistant' %}<|im_start|>assistant\n{% generation %}"
    "{% for c in m.content if c.type == 'text' %}{{ c.text }}{% endfor %}<|im_end|>\n{% endgeneration %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
# GLM-ASR: <|user|>\n<|begin_of_audio|> audio <|end_of_audio|><|user|>\n request <|assistant|>\n
GLM_ASR_TEMPLATE = (
    "{% for m in messages %}"
    "{% if m.role == 'system' %}<|system|>\n{% elif m.role == 'user' %}<|user|>\n"
    "{% else %}<|assistant|>\n{% endif %}"
    "{% for c in m.content %}"
    "{% if c.type == 'audio' %}<|begin_of_audio|><|pad|><|end_of_audio|><|user|>\n"
    "{% elif c.type == 'text' %}{{ c.text }}{% endif %}"
    "{% endfor %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
QWEN3_SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|audio_start|>",
    "<|audio_end|>",
    "<|audio_pad|>",
]
GLM_SPECIAL = [
    "<|endoftext|>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_audio|>",
    "<|end_of_audio|>",
    "<|pad|>",
]
# Both LLMs (Qwen3, Llama/GLM) at 2 layers, grouped-query attention kept (2 heads, 1 key/value head)
LLM_DIMS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": False,
}
REGISTRY_NAME = {"qwen3_asr": "qwen3-asr-0.6b", "glmasr": "glm-asr-nano"}


def _bpe(texts: list[str], vocab_size: int = 400) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges of a byte-level BPE trained on ``texts`` (every byte is in it)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    bpe.train_from_iterator([*texts, "language Chinese", "Please transcribe this audio into text"], trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return model["vocab"], merges


def _qwen3_asr(texts: list[str]):
    from transformers import (
        GenerationConfig,
        Qwen2Tokenizer,
        Qwen3ASRConfig,
        Qwen3ASRFeatureExtractor,
        Qwen3ASRForConditionalGeneration,
        Qwen3ASRProcessor,
    )

    vocab, merges = _bpe(texts)
    audio = {
        "audio_token": "<|audio_pad|>",
        "audio_bos_token": "<|audio_start|>",
        "audio_eos_token": "<|audio_end|>",
    }
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens=audio,
    )  # fmt: skip
    tok.add_tokens(QWEN3_SPECIAL, special_tokens=True)
    tok.add_tokens(["<asr_text>"])  # not special: it survives skip_special_tokens, as in the real tokenizer
    ids = tok.convert_tokens_to_ids
    eos = [ids("<|endoftext|>"), ids("<|im_end|>")]
    config = Qwen3ASRConfig(
        audio_config={
            "num_mel_bins": 128,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "d_model": 16,
            "output_dim": 32,
            "downsample_hidden_size": 8,
        },
        text_config={"model_type": "qwen3", "vocab_size": len(tok), **LLM_DIMS},
        audio_token_id=ids("<|audio_pad|>"),
        timestamp_token_id=ids("<|endoftext|>"),  # the forced aligner's token; unused by ASR
        pad_token_id=ids("<|im_end|>"),
        eos_token_id=eos,
        tie_word_embeddings=False,
    )
    model = Qwen3ASRForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=ids("<|im_end|>"), do_sample=False, max_new_tokens=24
    )
    processor = Qwen3ASRProcessor(
        feature_extractor=Qwen3ASRFeatureExtractor(), tokenizer=tok, chat_template=QWEN3_ASR_TEMPLATE
    )
    return model, processor


def _glm_asr(texts: list[str]):
    from transformers import (
        GenerationConfig,
        GlmAsrConfig,
        GlmAsrForConditionalGeneration,
        GlmAsrProcessor,
        Qwen2Tokenizer,
        WhisperFeatureExtractor,
    )

    vocab, merges = _bpe(texts)
    tok = Qwen2Tokenizer(
        vocab=vocab, merges=merges, unk_token=None, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tok.add_tokens(GLM_SPECIAL, special_tokens=True)
    ids = tok.convert_tokens_to_ids
    eos = [ids("<|endoftext|>"), ids("<|user|>"), ids("<|observation|>")]
    config = GlmAsrConfig(
        audio_config={
            "model_type": "glmasr_encoder",
            "hidden_size": 16,
            "intermediate_size": 64,  # 4 x hidden: the projector takes 4 merged frames
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_mel_bins": 128,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tok),
            "eos_token_id": eos,
            "pad_token_id": ids("<|endoftext|>"),
            **LLM_DIMS,
        },
        audio_token_id=ids("<|pad|>"),
        tie_word_embeddings=False,
    )
    model = GlmAsrForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=eos, pad_token_id=ids("<|endoftext|>"), do_sample=False, max_new_tokens=24
    )
    extractor = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
    processor = GlmAsrProcessor(feature_extractor=extractor, tokenizer=tok, chat_template=GLM_ASR_TEMPLATE)
    return model, processor


def build_tiny(out_dir: Path, texts: list[str], seed: int = 0, *, kind: str = "qwen3_asr") -> Path:
    """A randomly initialised 2-layer speech-LLM of ``kind`` (``qwen3_asr`` or ``glmasr``)."""
    from asr.models.registry import get_spec

    torch.manual_seed(seed)
    model, processor = {"qwen3_asr": _qwen3_asr, "glmasr": _glm_asr}[kind](texts)
    spec = replace(get_spec(REGISTRY_NAME[kind]), description=f"tiny random {kind} (tests)")
    AudioLLMASR(model.eval(), processor, spec, "cpu", torch.float32).save(Path(out_dir))
    return Path(out_dir)
