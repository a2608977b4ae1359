"""A tiny randomly initialised Whisper with the real multilingual tokenizer."""

from __future__ import annotations

from pathlib import Path

import torch

from asr.models.whisper.model import WhisperASR


def build_tiny(out_dir: Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Whisper with the real multilingual tokenizer (tests, offline demos)."""
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    from asr.models.registry import get_spec
    from asr.models.whisper.assets import whisper_generation_config, whisper_processor

    torch.manual_seed(seed)
    processor = whisper_processor(num_mel_bins=80)
    tok = processor.tokenizer
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = whisper_generation_config(config)
    spec = get_spec("whisper-tiny")
    asr_model = WhisperASR(model, processor, spec, "cpu", torch.float32)
    asr_model.save(out_dir)
    return out_dir
