"""Tiny randomly initialised funasr models (Paraformer, SenseVoice) in the real directory layout.

Both kinds use the real feature pipeline (80 mel bins, LFR 7/6, a global ``am.mvn``) and the
real architectures (SANM encoder; CIF predictor and SANM decoder for Paraformer), only with
two layers of width 64. Paraformer gets a character token list built from ``texts``.
SenseVoice gets a sentencepiece model: ``SenseVoiceSmall`` hard-codes the token ids of its
language and ``<|woitn|>`` tags (e.g. ``<|zh|>`` = 24884, ``<|woitn|>`` = 25017), so the tiny
vocabulary keeps those ids, fills the slots below them with reserved pieces and appends
the characters of ``texts`` after id 25054.

>>> build_tiny(Path("/tmp/tiny-sv"), ["今天恰么子饭啰"], kind="sensevoice")  # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from asr.errors import ConfigError
from asr.models.checkpoint import SAMPLE_RATE
from asr.models.funasr.checkpoint import BPE_FILE, CMVN_FILE, CONFIG_FILE, TOKENS_FILE, read_model_dir
from asr.models.funasr.model import FunASRModel, build_components
from asr.models.registry import get_spec
from asr.text.normalize import normalize
from tests.replicas.funasr import FRONTEND_CONF, SENSEVOICE_TAGS, SENSEVOICE_VOCAB

KINDS = {"paraformer": "paraformer-large", "sensevoice": "sensevoice-small"}

# the published values (tag ids, frontend) come from the replicas; the tiny model only shrinks sizes
_FRONTEND = dict(FRONTEND_CONF, dither=0.0)
_SANM_ENCODER = {
    "output_size": 64,
    "attention_heads": 2,
    "linear_units": 128,
    "num_blocks": 2,
    "dropout_rate": 0.0,
    "positional_dropout_rate": 0.0,
    "attention_dropout_rate": 0.0,
    "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}


def _paraformer_config() -> dict[str, Any]:
    return {
        "model": "Paraformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "encoder": "SANMEncoder",
        "encoder_conf": dict(_SANM_ENCODER),
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": 2,
            "linear_units": 128,
            "num_blocks": 2,
            "dropout_rate": 0.0,
            "positional_dropout_rate": 0.0,
            "self_attention_dropout_rate": 0.0,
            "src_attention_dropout_rate": 0.0,
            "att_layer_num": 2,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": 64, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "frontend": "WavFrontend",
        "frontend_conf": dict(_FRONTEND, cmvn_file=CMVN_FILE),
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True, "token_list": TOKENS_FILE},
    }


def _sensevoice_config() -> dict[str, Any]:
    return {
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": dict(_SANM_ENCODER, tp_blocks=1),
        "frontend": "WavFrontend",
        "frontend_conf": dict(_FRONTEND, cmvn_file=CMVN_FILE),
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": BPE_FILE, "unk_symbol": "<unk>", "split_with_space": True},
    }


def characters(texts: list[str]) -> list[str]:
    """Sorted distinct characters of the normalized ``texts``."""
    chars = sorted({ch for t in texts for ch in normalize(t)})
    if not chars:
        raise ConfigError("build_tiny needs texts with at least one CJK character, digit or letter")
    return chars


def sensevoice_sentencepiece(chars: list[str]) -> bytes:
    """A sentencepiece model with SenseVoice's tag ids and one piece per character in ``chars``."""
    import sentencepiece as spm

    pieces = [SENSEVOICE_TAGS.get(i, f"<|reserved_{i}|>") for i in range(3, SENSEVOICE_VOCAB)]
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(["".join(chars)]),
        model_writer=buf,
        model_type="char",
        vocab_size=SENSEVOICE_VOCAB + len(chars),
        user_defined_symbols=pieces,
        unk_id=0,  # also SenseVoice's CTC blank
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        add_dummy_prefix=False,
        normalization_rule_name="identity",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
    )
    return buf.getvalue()


def _speechlike(rng: np.random.Generator, seconds: float = 4.0) -> np.ndarray:
    """Harmonic 'syllables' with gliding pitch, pauses and a little noise (CMVN statistics)."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None)  # ~half of the time silent
    wave = 0.1 * envelope * voiced + 0.003 * rng.standard_normal(len(t))
    return wave.astype(np.float32)


def write_cmvn(path: Path, seed: int) -> None:
    """``am.mvn`` in Kaldi nnet text form (``<AddShift>`` -mean, ``<Rescale>`` 1/std) of LFR fbank."""
    from asr.models.funasr.checkpoint import funasr_tables

    frontend = funasr_tables().frontend_classes["WavFrontend"](**_FRONTEND)
    wave = torch.from_numpy(_speechlike(np.random.default_rng(seed)))[None]
    feats, _ = frontend(wave, [wave.shape[1]])
    feats = feats[0].double()
    shift = (-feats.mean(0)).tolist()
    scale = (1.0 / feats.std(0).clamp_min(1e-3)).tolist()
    dim = len(shift)

    def row(values: list[float]) -> str:
        return "<LearnRateCoef> 0 [ " + " ".join(f"{v:.6f}" for v in values) + " ]"

    text = "\n".join(
        [
            "<Nnet>",
            f"<Splice> {dim} {dim}",
            "[ 0 ]",
            f"<AddShift> {dim} {dim}",
            row(shift),
            f"<Rescale> {dim} {dim}",
            row(scale),
            "</Nnet>",
            "",
        ]
    )
    path.write_text(text, encoding="utf-8")


def build_tiny(out_dir: Path, texts: list[str], seed: int = 0, kind: str = "paraformer") -> Path:
    """Randomly initialised tiny ``kind`` model saved to ``out_dir``; loadable with ``load_model``."""
    if kind not in KINDS:
        raise ConfigError(f"unknown tiny funasr kind {kind!r} (choose {', '.join(KINDS)})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chars = characters(texts)
    write_cmvn(out_dir / CMVN_FILE, seed)
    if kind == "paraformer":
        config = _paraformer_config()
        tokens = ["<blank>", "<s>", "</s>", *chars, "<unk>"]
        (out_dir / TOKENS_FILE).write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    else:
        config = _sensevoice_config()
        (out_dir / BPE_FILE).write_bytes(sensevoice_sentencepiece(chars))
    (out_dir / CONFIG_FILE).write_text(
        yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    files = read_model_dir(out_dir)
    torch.manual_seed(seed)
    net, tokenizer, frontend = build_components(files)
    model = FunASRModel(net.eval(), tokenizer, frontend, files, get_spec(KINDS[kind]), "cpu", torch.float32)
    model.save(out_dir)
    return out_dir
