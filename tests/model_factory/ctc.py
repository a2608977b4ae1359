"""wav2vec2 CTC models: ``size="real"`` replicates ``jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn``,
``size="tiny"`` is its configuration with small dimensions and a character vocabulary from texts.

Real files as in that repository (its file listing on huggingface.co, main since the SFconvertbot
commit 8f88a77): ``config.json``, ``model.safetensors`` (fp32; the repository also has
``pytorch_model.bin`` and ``flax_model.msgpack``, not replicated), ``preprocessor_config.json``
(158 bytes), ``vocab.json`` (44.4 kB), ``special_tokens_map.json`` (85 bytes).

Architecture: facebook/wav2vec2-large-xlsr-53 (24 layers, 1024 wide, 16 heads, 4096 FFN, 7-layer
512-channel conv stack with layer norm, stable layer norm) with a CTC head. The dropout,
layerdrop and masking values follow the configs of jonatasgrosman's other XLSR-53 fine-tunes of
the same week (e.g. ``wav2vec2-large-xlsr-53-dutch``), which share his training script; not
confirmed for the zh-CN file (its config.json, 1.57 kB on the Hub, was not found in a public
copy; the architecture values are XLSR-53's). ``gradient_checkpointing: true`` is in those files
too.

``vocab.json``: NOT the publisher's character list (learned from Common Voice zh-CN, not
reproduced). A placeholder of the same size and layout: ``<pad>`` 0 (the CTC blank), ``<s>`` 1,
``</s>`` 2, ``<unk>`` 3, ``|`` 4, then CJK characters in code-point order. The size, 3503, was
recalled from the model's lm_head; no public copy of the file or of config.json states it, but
it agrees with the Hub's listed size of the real ``vocab.json``: 3503 entries of this layout
serialize (as Wav2Vec2CTCTokenizer writes them) to 44,432 bytes, and the Hub shows 44.4 kB.

``preprocessor_config.json``: the published file's six keys (no ``feature_extractor_type``): its
content as copied in ydshieh/wav2vec2-large-xlsr-53-chinese-zh-cn-gpt (huggingface.co, the same
158-byte file), and 158 bytes is the size the Hub lists for jonatasgrosman's file.
``special_tokens_map.json``: 85 bytes, content as shown on huggingface.co for this repository.

Tiny: 2 layers of width 48 (2 heads, FFN 96), the real 7-layer conv stack (total stride 320: 50
frames per second of 16 kHz audio) with 32 channels, no dropout, layerdrop or SpecAugment, and a
character vocabulary built from ``texts``; written by ``CTCASR.save``.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from asr.errors import ConfigError
from asr.models.checkpoint import SAMPLE_RATE
from asr.models.ctc.model import CTCASR, UNTRAINED_HEAD
from asr.models.ctc.vocab import build_vocab, make_tokenizer
from asr.models.registry import get_spec
from tests.model_factory.common import cjk_characters, reduce, write_json

XLSR_LAYERS = 24
XLSR_VOCAB_SIZE = 3503  # not confirmed from a public copy; consistent with vocab.json's size (docstring)
_SPECIALS = ["<pad>", "<s>", "</s>", "<unk>", "|"]


def config_json(layers: int | None = None) -> dict[str, Any]:
    n = reduce(XLSR_LAYERS, layers)
    return {
        "_name_or_path": "facebook/wav2vec2-large-xlsr-53",
        "activation_dropout": 0.05,
        "apply_spec_augment": True,
        "architectures": ["Wav2Vec2ForCTC"],
        "attention_dropout": 0.1,
        "bos_token_id": 1,
        "conv_bias": True,
        "conv_dim": [512] * 7,
        "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
        "conv_stride": [5, 2, 2, 2, 2, 2, 2],
        "ctc_loss_reduction": "mean",
        "ctc_zero_infinity": True,
        "do_stable_layer_norm": True,
        "eos_token_id": 2,
        "feat_extract_activation": "gelu",
        "feat_extract_dropout": 0.0,
        "feat_extract_norm": "layer",
        "feat_proj_dropout": 0.05,
        "final_dropout": 0.0,
        "gradient_checkpointing": True,
        "hidden_act": "gelu",
        "hidden_dropout": 0.05,
        "hidden_size": 1024,
        "initializer_range": 0.02,
        "intermediate_size": 4096,
        "layer_norm_eps": 1e-05,
        "layerdrop": 0.05,
        "mask_feature_length": 10,
        "mask_feature_prob": 0.0,
        "mask_time_length": 10,
        "mask_time_prob": 0.05,
        "model_type": "wav2vec2",
        "num_attention_heads": 16,
        "num_conv_pos_embedding_groups": 16,
        "num_conv_pos_embeddings": 128,
        "num_feat_extract_layers": 7,
        "num_hidden_layers": n,
        "pad_token_id": 0,
        "transformers_version": "4.7.0.dev0",
        "vocab_size": XLSR_VOCAB_SIZE,
    }


def vocab_json() -> dict[str, int]:
    tokens = [*_SPECIALS, *cjk_characters(XLSR_VOCAB_SIZE - len(_SPECIALS))]
    return {t: i for i, t in enumerate(tokens)}


# the tiny model: these dimensions, no dropout; the conv geometry and CTC loss settings are the real ones
TINY_DIMS = {
    "hidden_size": 48,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 96,
    "conv_dim": (32,) * 7,
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
}
_TINY_KEEPS = ("conv_kernel", "conv_stride", "ctc_loss_reduction", "ctc_zero_infinity")
_DROPOUTS = (
    "hidden_dropout",
    "attention_dropout",
    "activation_dropout",
    "feat_proj_dropout",
    "final_dropout",
)


def build_tiny(out_dir: Path, texts: list[str], *, seed: int = 0, feat_extract_norm: str = "layer") -> Path:
    """A randomly initialised 2-layer wav2vec2 CTC model with a character vocabulary from ``texts``.

    ``feat_extract_norm="group"`` builds the wav2vec2-base variant that takes no padding mask.
    """
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC, Wav2Vec2Processor

    if feat_extract_norm not in ("layer", "group"):
        raise ConfigError(f"feat_extract_norm must be 'layer' or 'group', not {feat_extract_norm!r}")
    real = config_json()
    torch.manual_seed(seed)
    vocab = build_vocab(texts)
    tokenizer = make_tokenizer(vocab)
    layer_norm = feat_extract_norm == "layer"
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        **TINY_DIMS,
        **{key: real[key] for key in _TINY_KEEPS},
        **dict.fromkeys(_DROPOUTS, 0.0),
        feat_extract_norm=feat_extract_norm,
        do_stable_layer_norm=layer_norm,
        layerdrop=0.0,
        mask_time_prob=0.0,  # no SpecAugment: reproducible test runs (it draws from numpy's global RNG)
        pad_token_id=vocab["<pad>"],
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


def write_xlsr(out_dir: Path, *, layers: int | None = None, seed: int = 0) -> Path:
    from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

    config_data = config_json(layers)
    write_json(out_dir / "config.json", config_data)
    config = Wav2Vec2Config.from_pretrained(out_dir)
    torch.manual_seed(seed)
    model = Wav2Vec2ForCTC(config).eval()
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.move(str(Path(tmp) / "model.safetensors"), out_dir / "model.safetensors")
    del model
    write_json(out_dir / "config.json", config_data)
    write_json(out_dir / "vocab.json", vocab_json(), indent=None)
    write_json(
        out_dir / "preprocessor_config.json",
        {
            "do_normalize": True,
            "feature_size": 1,
            "padding_side": "right",
            "padding_value": 0.0,
            "return_attention_mask": True,
            "sampling_rate": 16000,
        },
    )
    write_json(
        out_dir / "special_tokens_map.json",
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
        indent=None,
    )
    return out_dir
