"""A tiny randomly initialised wav2vec2 CTC model with a character vocabulary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from asr.errors import ConfigError
from asr.models.checkpoint import SAMPLE_RATE
from asr.models.ctc.model import CTCASR, UNTRAINED_HEAD
from asr.models.ctc.vocab import build_vocab, make_tokenizer


def build_tiny(out_dir: Path, texts: list[str], seed: int = 0, *, feat_extract_norm: str = "layer") -> Path:
    """A randomly initialised 2-layer wav2vec2 CTC model with a character vocabulary from ``texts``.

    The conv stack is the standard 7-layer one (total stride 320: 50 frames per second of
    16 kHz audio) with 32 channels; no dropout, layerdrop or SpecAugment.
    ``feat_extract_norm="group"`` builds the wav2vec2-base variant that takes no padding mask.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    from asr.models.registry import get_spec

    if feat_extract_norm not in ("layer", "group"):
        raise ConfigError(f"feat_extract_norm must be 'layer' or 'group', not {feat_extract_norm!r}")
    torch.manual_seed(seed)
    vocab = build_vocab(texts)
    tokenizer = make_tokenizer(vocab)
    layer_norm = feat_extract_norm == "layer"
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=48,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=96,
        conv_dim=(32,) * 7,
        conv_kernel=(10, 3, 3, 3, 3, 2, 2),
        conv_stride=(5, 2, 2, 2, 2, 2, 2),
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=layer_norm,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        feat_proj_dropout=0.0,
        final_dropout=0.0,
        layerdrop=0.0,
        mask_time_prob=0.0,  # no SpecAugment: reproducible test runs (it draws from numpy's global RNG)
        pad_token_id=vocab["<pad>"],
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    setattr(config, UNTRAINED_HEAD, True)
    model = Wav2Vec2ForCTC(config)
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=layer_norm
    )
    processor = Wav2Vec2Processor(feature_extractor=feature_extractor, tokenizer=tokenizer)
    spec = replace(get_spec("xlsr-53-zh"), description="tiny random wav2vec2 CTC (tests, offline demos)")
    CTCASR(model, processor, spec, "cpu", torch.float32).save(Path(out_dir))
    return Path(out_dir)
