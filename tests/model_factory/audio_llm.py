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
from typing import Any

import torch

from asr.models.audio_llm.model import AudioLLMASR
from tests.model_factory.byte_bpe import byte_level_bpe
from tests.model_factory.common import reduce

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


# --- real-size replicas -----------------------------------------------------------------------

# Qwen2/Qwen3 added tokens from id 151643 (the added_tokens_decoder of Qwen's tokenizer_config.json,
# as public copies of it show, e.g. 151662 <|fim_pad|> special=false); Qwen3-ASR's own:
# <|audio_start|> 151669, <|audio_end|> 151670, <|audio_pad|> 151676 (= Qwen3ASRConfig.audio_token_id), <asr_text> 151704 (not special),
# timestamp 151705 (= Qwen3ASRConfig.timestamp_token_id) -- the ids as the Qwen3-ASR tokenizer
# config lists them (quoted by public ports, e.g. tests of Qwen3-ASR tokenizer re-implementations).
# Ids in between whose names are not public here are filled with placeholders so the known ids hold.
QWEN3_ADDED = {
    151643: "<|endoftext|>", 151644: "<|im_start|>", 151645: "<|im_end|>",
    151646: "<|object_ref_start|>", 151647: "<|object_ref_end|>", 151648: "<|box_start|>",
    151649: "<|box_end|>", 151650: "<|quad_start|>", 151651: "<|quad_end|>",
    151652: "<|vision_start|>", 151653: "<|vision_end|>", 151654: "<|vision_pad|>",
    151655: "<|image_pad|>", 151656: "<|video_pad|>", 151657: "<tool_call>", 151658: "</tool_call>",
    151659: "<|fim_prefix|>", 151660: "<|fim_middle|>", 151661: "<|fim_suffix|>", 151662: "<|fim_pad|>",
    151663: "<|repo_name|>", 151664: "<|file_sep|>", 151665: "<tool_response>", 151666: "</tool_response>",
    151667: "<think>", 151668: "</think>", 151669: "<|audio_start|>", 151670: "<|audio_end|>",
    151676: "<|audio_pad|>", 151704: "<asr_text>", 151705: "<|timestamp|>",
}  # fmt: skip
QWEN3_BPE_SIZE = 151643
# GLM-4's special tokens in GLM-4's order, offset to GLM-ASR's 59,264-token vocabulary: the three
# eos ids of GlmAsrConfig's text_config (59246, 59253, 59255) are GLM-4's <|endoftext|>, <|user|>,
# <|observation|>; <|pad|> 59260 is GlmAsrConfig.audio_token_id and GlmAsrProcessor's audio_token.
# The audio delimiters' ids (59261, 59262) are inferred, not published here.
GLM_ADDED = {
    59246: "<|endoftext|>", 59247: "[MASK]", 59248: "[gMASK]", 59249: "[sMASK]", 59250: "<sop>",
    59251: "<eop>", 59252: "<|system|>", 59253: "<|user|>", 59254: "<|assistant|>",
    59255: "<|observation|>", 59256: "<|begin_of_image|>", 59257: "<|end_of_image|>",
    59258: "<|begin_of_video|>", 59259: "<|end_of_video|>", 59260: "<|pad|>",
    59261: "<|begin_of_audio|>", 59262: "<|end_of_audio|>",
}  # fmt: skip
GLM_BPE_SIZE = 59246
NOT_SPECIAL = {  # added but not special in the Qwen tokenizer_config.json (GLM's all are special)
    "<asr_text>", "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
    "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
}  # fmt: skip

# Qwen3-ASR audio encoders and Qwen3 LLMs. 1.7B: Qwen3ASREncoderConfig's defaults and
# Qwen3ASRConfig's text_config defaults (transformers 5.24, checkpoint Qwen/Qwen3-ASR-1.7B-hf),
# output_dim = the LLM width 2048 (the encoder default 3584 is Qwen-Omni's). 0.6B: encoder
# d_model 896, 18 layers, 14 heads, FFN 3584, output 1024 and the Qwen3-0.6B LLM (1024 wide,
# FFN 3072, 28 layers, 16/8 heads, head_dim 128): Qwen/Qwen3-ASR-0.6B's config.json as tabulated
# in github.com/ivan-digital/qwen3-asr-swift docs/asr-model.md; the LLM matches Qwen/Qwen3-0.6B.
QWEN3_ASR_REAL = {
    "qwen3-asr-0.6b": (
        {"d_model": 896, "encoder_layers": 18, "encoder_attention_heads": 14, "encoder_ffn_dim": 3584, "output_dim": 1024},
        {"hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
         "num_key_value_heads": 8, "head_dim": 128},
    ),
    "qwen3-asr-1.7b": (
        {"d_model": 1024, "encoder_layers": 24, "encoder_attention_heads": 16, "encoder_ffn_dim": 4096, "output_dim": 2048},
        {"hidden_size": 2048, "intermediate_size": 6144, "num_hidden_layers": 28, "num_attention_heads": 16,
         "num_key_value_heads": 8, "head_dim": 128},
    ),
}  # fmt: skip
QWEN3_ASR_COMMON = (
    {"num_mel_bins": 128, "downsample_hidden_size": 480, "n_window": 50, "n_window_infer": 800},
    {"vocab_size": 151936, "max_position_embeddings": 65536, "rope_parameters": {"rope_theta": 1000000.0, "rope_type": "default"},
     "rms_norm_eps": 1e-6, "tie_word_embeddings": True},
)  # fmt: skip
# GLM-ASR-Nano-2512: GlmAsrEncoderConfig's and GlmAsrConfig's defaults (transformers 5.24,
# checkpoint zai-org/GLM-ASR-Nano-2512): a Whisper-large-sized encoder (1280 wide, 32 layers)
# and a 28-layer Llama-type LLM (2048 wide, 59,264 tokens). lm_head is its own tensor
# (transformers' convert_glmasr_weights_to_hf.py keeps the original's lm_head.*), so untied.
GLM_REAL_LAYERS = {"audio": 32, "text": 28}
REAL_LAYERS = {"qwen3-asr-0.6b": 28, "qwen3-asr-1.7b": 28, "glm-asr-nano": 32}


def _real_tokenizer(size: int, added: dict[int, str], **special: Any):
    """A byte-level BPE of ``size`` learned tokens plus ``added`` at their exact ids."""
    from transformers import AddedToken, Qwen2Tokenizer

    vocab, merges = byte_level_bpe(size)
    # names not public here get placeholders, so every known id holds
    contents = [added.get(i, f"<|reserved_{i}|>") for i in range(size, max(added) + 1)]
    vocab.update({content: size + i for i, content in enumerate(contents)})
    tok = Qwen2Tokenizer(vocab=vocab, merges=merges, unk_token=None, **special)
    tok.add_tokens([AddedToken(c, special=c not in NOT_SPECIAL, normalized=False) for c in contents])
    ids = tok.convert_tokens_to_ids(list(added.values()))
    wrong = {c: got for (want, c), got in zip(added.items(), ids, strict=True) if got != want}
    if wrong:
        raise RuntimeError(f"special tokens off their real ids: {wrong}")
    return tok


def _save(model, processor, out_dir: Path, dtype: torch.dtype) -> Path:
    """The publisher's layout: config, generation config, safetensors, processor files."""
    model.to(dtype).save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    return out_dir


def write_qwen3_asr(name: str, out_dir: Path, layers: int | None = None, seed: int = 0) -> Path:
    """A real-size Qwen3-ASR replica (bf16, as Qwen publishes it), random weights."""
    from transformers import (
        GenerationConfig,
        Qwen3ASRConfig,
        Qwen3ASRFeatureExtractor,
        Qwen3ASRForConditionalGeneration,
        Qwen3ASRProcessor,
    )

    audio_dims, text_dims = QWEN3_ASR_REAL[name]
    audio_common, text_common = QWEN3_ASR_COMMON
    tok = _real_tokenizer(
        QWEN3_BPE_SIZE, QWEN3_ADDED, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={"audio_token": "<|audio_pad|>", "audio_bos_token": "<|audio_start|>",
                              "audio_eos_token": "<|audio_end|>"},
    )  # fmt: skip
    config = Qwen3ASRConfig(
        audio_config={**audio_common, **audio_dims, "encoder_layers": reduce(audio_dims["encoder_layers"], layers)},
        text_config={"model_type": "qwen3", **text_common, **text_dims,
                     "num_hidden_layers": reduce(text_dims["num_hidden_layers"], layers)},
        audio_token_id=151676, timestamp_token_id=151705, pad_token_id=151645, eos_token_id=[151643, 151645],
        tie_word_embeddings=True,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Qwen3ASRForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[151643, 151645], pad_token_id=151645, do_sample=False
    )
    processor = Qwen3ASRProcessor(
        feature_extractor=Qwen3ASRFeatureExtractor(), tokenizer=tok, chat_template=QWEN3_ASR_TEMPLATE
    )
    return _save(model, processor, Path(out_dir), torch.bfloat16)


def write_glm_asr(out_dir: Path, layers: int | None = None, seed: int = 0) -> Path:
    """A real-size GLM-ASR-Nano-2512 replica (bf16, as zai-org publishes it), random weights."""
    from transformers import (
        GenerationConfig,
        GlmAsrConfig,
        GlmAsrForConditionalGeneration,
        GlmAsrProcessor,
        WhisperFeatureExtractor,
    )

    tok = _real_tokenizer(GLM_BPE_SIZE, GLM_ADDED, eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    eos = [59246, 59253, 59255]
    config = GlmAsrConfig(
        audio_config={"model_type": "glmasr_encoder", "num_hidden_layers": reduce(GLM_REAL_LAYERS["audio"], layers)},
        text_config={"model_type": "llama", "num_hidden_layers": reduce(GLM_REAL_LAYERS["text"], layers),
                     "pad_token_id": 59246, "tie_word_embeddings": False},
        audio_token_id=59260, tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = GlmAsrForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=59246, do_sample=False)
    extractor = WhisperFeatureExtractor(feature_size=128, return_attention_mask=True)
    processor = GlmAsrProcessor(feature_extractor=extractor, tokenizer=tok, chat_template=GLM_ASR_TEMPLATE)
    return _save(model, processor, Path(out_dir), torch.bfloat16)
