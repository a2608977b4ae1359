"""funasr models (Paraformer-large, SenseVoiceSmall): ``size="real"`` in the ModelScope layout,
``size="tiny"`` the same configuration with small dimensions, saved by the library.

Paraformer-large (``iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch``):
``config.yaml``, ``configuration.json``, ``model.pt``, ``am.mvn``, ``tokens.json``, ``seg_dict``.
SenseVoiceSmall (``iic/SenseVoiceSmall``): ``config.yaml``, ``configuration.json``, ``model.pt``,
``am.mvn``, ``tokens.json``, ``chn_jpn_yue_eng_ko_spectok.bpe.model``.

Sources of the config values (checked against public copies):
- Paraformer-large: FunASR's ``funasr/models/paraformer/template.yaml`` (github.com/modelscope/FunASR)
  for the model, encoder, decoder, predictor, frontend, SpecAugment, tokenizer, CTC and optimizer
  sections; the same values are in the config of the streaming sibling of this checkpoint
  (``runtime/triton_gpu/model_repo_paraformer_large_online/feature_extractor/config.yaml``, same
  vocab8404 token list). The class names (``Paraformer``, ``SANMEncoder``,
  ``ParaformerSANMDecoder``, ``CifPredictorV2``, ``WavFrontend``, ``SpecAugLFR``) and the file list
  are those of the published ModelScope repository, as downloaded and patched by third-party
  tools. ``dataset_conf`` (training only) is not confirmed: the template's differs.
- SenseVoiceSmall: the published config.yaml as copied in FunASR's
  ``runtime/triton_gpu/model_repo_sense_voice_small/feature_extractor/config.yaml`` and quoted in
  ``docs/tutorial/Tables.md`` (which also quotes its ``configuration.json``): every section,
  training ones included; it has no ``ctc_conf``.
The module is built from the config dict through funasr's own class registry, as
funasr's ``AutoModel`` does (tokenizer -> ``vocab_size``, frontend -> ``input_size``), and its
state dict is saved with ``torch.save`` as ``model.pt`` (fp32, a plain state dict).

Placeholders (the real files are not reproduced):
- ``tokens.json`` of Paraformer-large: 8404 entries, ``<blank>`` ``<s>`` ``</s>`` first and
  ``<unk>`` last as in the real list (size, specials and their ids confirmed from the
  ``token_list`` of the streaming sibling's config.yaml above), CJK characters in code-point
  order between (the real list mixes CJK characters with English pieces such as ``and``,
  ``ing``, ``tion``).
- ``seg_dict``: every CJK token maps to itself, plus a few English words split into ``@@`` pieces
  (the real one is a large English/Chinese segmentation dictionary; not checked).
- SenseVoice's sentencepiece model: 25,055 pieces (the real size: FunASR's
  ``runtime/llama.cpp/sensevoice/export_sensevoice_gguf.py`` writes ``sv.vocab_size`` 25055 and
  ``runtime/llama.cpp/DESIGN.md`` lists "spectok BPE (25055)") with the language / emotion /
  event / ITN tags at the ids SenseVoiceSmall uses (``<|zh|>`` 24884, ``<|woitn|>`` 25017,
  ...; see ``SENSEVOICE_TAGS``); the other slots are CJK characters as single pieces. The real
  model is a BPE model trained on Chinese, Japanese, Cantonese, English and Korean text.
- ``am.mvn``: the real Kaldi nnet text layout, spacing and shape (560 = 80 mel x LFR 7), as in
  the copies in FunASR's ``runtime/triton_gpu/model_repo_sense_voice_small/feature_extractor/am.mvn``
  and ``.../model_repo_paraformer_large_online/lfr_cmvn_pe/am.mvn`` (the two are byte-identical);
  the statistics are computed from a synthetic speech-like signal, not copied.

Tiny: the real feature pipeline (80 mel bins, LFR 7/6, a global ``am.mvn``) and architectures
(SANM encoder; CIF predictor and SANM decoder for Paraformer) with two layers of width 64 and no
dropout (the training sections dropped), written by ``FunASRModel.save``. Paraformer gets a
character token list built from ``texts``. SenseVoice gets a sentencepiece model keeping the tag
ids SenseVoiceSmall hard-codes, reserved pieces in the slots below them and the characters of
``texts`` after id 25054.

>>> build("sensevoice-small", Path("/tmp/tiny-sv"), texts=["今天恰么子饭啰"])  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from asr.errors import ConfigError
from asr.models.checkpoint import SAMPLE_RATE
from asr.models.funasr.checkpoint import (
    BPE_FILE,
    CMVN_FILE,
    CONFIG_FILE,
    NATIVE_WEIGHTS_FILE,
    SEG_DICT_FILE,
    TOKENS_FILE,
    funasr_tables,
    read_model_dir,
)
from asr.models.funasr.model import FunASRModel, build_components
from asr.models.registry import get_spec
from asr.text.normalize import normalize
from tests.model_factory.common import cjk_characters, reduce, write_json

PARAFORMER_VOCAB = 8404
SENSEVOICE_VOCAB = 25055
SENSEVOICE_BPE = "chn_jpn_yue_eng_ko_spectok.bpe.model"

# Tag ids of SenseVoiceSmall's vocabulary. Confirmed: the ids its model code hard-codes
# (FunAudioLLM/SenseVoice model.py and FunASR funasr/models/sense_voice/model.py: lid_int_dict
# 24884 zh, 24885 en, 24888 yue, 24892 ja, 24896 ko, 24992 nospeech; textnorm_int_dict 25016
# withitn, 25017 woitn; emo_dict 25001 happy, 25002 sad, 25003 angry, 25004 neutral, 25009 unk).
# The tag names are SenseVoice's README (emotion and event labels). The ids of the event tags
# (24993-25000) and of FEARFUL / DISGUSTED / SURPRISED / Event_UNK (25005-25008): recalled from
# the published tokens.json, not confirmed from a public source.
SENSEVOICE_TAGS = {
    24884: "<|zh|>",
    24885: "<|en|>",
    24888: "<|yue|>",
    24892: "<|ja|>",
    24896: "<|ko|>",
    24992: "<|nospeech|>",
    24993: "<|Speech|>",
    24994: "<|BGM|>",
    24995: "<|Applause|>",
    24996: "<|Laughter|>",
    24997: "<|Cry|>",
    24998: "<|Sneeze|>",
    24999: "<|Breath|>",
    25000: "<|Cough|>",
    25001: "<|HAPPY|>",
    25002: "<|SAD|>",
    25003: "<|ANGRY|>",
    25004: "<|NEUTRAL|>",
    25005: "<|FEARFUL|>",
    25006: "<|DISGUSTED|>",
    25007: "<|SURPRISED|>",
    25008: "<|Event_UNK|>",
    25009: "<|EMO_UNKNOWN|>",
    25016: "<|withitn|>",
    25017: "<|woitn|>",
}

# frontend and SpecAugment: the same in both published configs (sources in the module docstring)
FRONTEND_CONF = {
    "fs": SAMPLE_RATE,
    "window": "hamming",
    "n_mels": 80,
    "frame_length": 25,
    "frame_shift": 10,
    "lfr_m": 7,
    "lfr_n": 6,
}
SPECAUG_CONF = {
    "apply_time_warp": False,
    "time_warp_window": 5,
    "time_warp_mode": "bicubic",
    "apply_freq_mask": True,
    "freq_mask_width_range": [0, 30],
    "lfr_rate": 6,
    "num_freq_mask": 1,
    "apply_time_mask": True,
    "time_mask_width_range": [0, 12],
    "num_time_mask": 1,
}
_SANM = {
    "output_size": 512,
    "attention_heads": 4,
    "linear_units": 2048,
    "num_blocks": 50,
    "dropout_rate": 0.1,
    "positional_dropout_rate": 0.1,
    "attention_dropout_rate": 0.1,
    "input_layer": "pe",
    "pos_enc_class": "SinusoidalPositionEncoder",
    "normalize_before": True,
    "kernel_size": 11,
    "sanm_shfit": 0,
    "selfattention_layer_type": "sanm",
}
_CTC_CONF = {"dropout_rate": 0.0, "ctc_type": "builtin", "reduce": True, "ignore_nan_grad": True}
_TRAIN_CONF = {  # Paraformer's training section (funasr's trainer reads it; this library does not)
    "accum_grad": 1,
    "grad_clip": 5,
    "max_epoch": 150,
    "keep_nbest_models": 10,
    "avg_nbest_model": 10,
    "log_interval": 50,
}
_OPTIM = {
    "optim": "adam",
    "optim_conf": {"lr": 0.0005},
    "scheduler": "warmuplr",
    "scheduler_conf": {"warmup_steps": 30000},
}

FUNASR_LAYERS = {"paraformer-large": 50, "sensevoice-small": 50}


def paraformer_config(layers: int | None = None) -> dict[str, Any]:
    encoder = dict(_SANM, num_blocks=reduce(50, layers))
    decoder_blocks = reduce(16, layers)
    return {
        "encoder": "SANMEncoder",
        "encoder_conf": encoder,
        "decoder": "ParaformerSANMDecoder",
        "decoder_conf": {
            "attention_heads": 4,
            "linear_units": 2048,
            "num_blocks": decoder_blocks,
            "dropout_rate": 0.1,
            "positional_dropout_rate": 0.1,
            "self_attention_dropout_rate": 0.1,
            "src_attention_dropout_rate": 0.1,
            "att_layer_num": decoder_blocks,
            "kernel_size": 11,
            "sanm_shfit": 0,
        },
        "predictor": "CifPredictorV2",
        "predictor_conf": {"idim": 512, "threshold": 1.0, "l_order": 1, "r_order": 1, "tail_threshold": 0.45},
        "model": "Paraformer",
        "model_conf": {
            "ctc_weight": 0.0,
            "lsm_weight": 0.1,
            "length_normalized_loss": True,
            "predictor_weight": 1.0,
            "predictor_bias": 1,
            "sampling_ratio": 0.75,
        },
        "frontend": "WavFrontend",
        "frontend_conf": dict(FRONTEND_CONF),
        "specaug": "SpecAugLFR",
        "specaug_conf": dict(SPECAUG_CONF),
        "train_conf": dict(_TRAIN_CONF),
        **copy.deepcopy(_OPTIM),
        "dataset": "AudioDataset",
        "dataset_conf": {  # training only; not confirmed (FunASR's template.yaml has other values)
            "index_ds": "IndexDSJsonl",
            "batch_sampler": "EspnetStyleBatchSampler",
            "batch_type": "length",
            "batch_size": 6000,
            "max_token_length": 2048,
            "buffer_size": 1024,
            "shuffle": True,
            "num_workers": 4,
        },
        "tokenizer": "CharTokenizer",
        "tokenizer_conf": {"unk_symbol": "<unk>", "split_with_space": True},
        "ctc_conf": dict(_CTC_CONF),
        "normalize": None,
    }


def sensevoice_config(layers: int | None = None) -> dict[str, Any]:
    encoder = dict(_SANM, num_blocks=reduce(50, layers), tp_blocks=reduce(20, layers))
    return {
        "encoder": "SenseVoiceEncoderSmall",
        "encoder_conf": encoder,
        "model": "SenseVoiceSmall",
        "model_conf": {"length_normalized_loss": True, "sos": 1, "eos": 2, "ignore_id": -1},
        "tokenizer": "SentencepiecesTokenizer",
        "tokenizer_conf": {"bpemodel": None, "unk_symbol": "<unk>", "split_with_space": True},
        "frontend": "WavFrontend",
        "frontend_conf": dict(FRONTEND_CONF, cmvn_file=None),
        "dataset": "SenseVoiceCTCDataset",
        "dataset_conf": {
            "index_ds": "IndexDSJsonl",
            "batch_sampler": "EspnetStyleBatchSampler",
            "data_split_num": 32,
            "batch_type": "token",
            "batch_size": 14000,
            "max_token_length": 2000,
            "min_token_length": 60,
            "max_source_length": 2000,
            "min_source_length": 60,
            "max_target_length": 200,
            "min_target_length": 0,
            "shuffle": True,
            "num_workers": 4,
            # OmegaConf interpolations in the published file (funasr resolves them)
            "sos": "${model_conf.sos}",
            "eos": "${model_conf.eos}",
            "IndexDSJsonl": "IndexDSJsonl",
            "retry": 20,
        },
        "train_conf": {
            "accum_grad": 1,
            "grad_clip": 5,
            "max_epoch": 20,
            "keep_nbest_models": 10,
            "avg_nbest_model": 10,
            "log_interval": 100,
            "resume": True,
            "validate_interval": 10000,
            "save_checkpoint_interval": 10000,
        },
        "optim": "adamw",
        "optim_conf": {"lr": 0.00002},
        "scheduler": "warmuplr",
        "scheduler_conf": {"warmup_steps": 25000},
        "specaug": "SpecAugLFR",
        "specaug_conf": dict(SPECAUG_CONF),
    }


def configuration_json(ms_id: str, hf_id: str, tokenizer_files: dict[str, str]) -> dict[str, Any]:
    return {
        "framework": "pytorch",
        "task": "auto-speech-recognition",
        "model": {"type": "funasr"},
        "pipeline": {"type": "funasr-pipeline"},
        "model_name_in_hub": {"ms": ms_id, "hf": hf_id},
        "file_path_metas": {
            "init_param": "model.pt",
            "config": "config.yaml",
            "tokenizer_conf": tokenizer_files,
            "frontend_conf": {"cmvn_file": "am.mvn"},
        },
    }


def paraformer_tokens() -> list[str]:
    specials = ["<blank>", "<s>", "</s>"]
    return [*specials, *cjk_characters(PARAFORMER_VOCAB - len(specials) - 1), "<unk>"]


def seg_dict_text(tokens: list[str]) -> str:
    lines = [f"{t} {t}" for t in tokens if len(t) == 1]
    lines += ["hello he@@ llo", "ok ok", "changsha chang@@ sha"]
    return "\n".join(lines) + "\n"


def _sentencepiece(text: str, vocab_size: int, pieces: list[str]) -> bytes:
    """A char sentencepiece model whose ids 3.. are ``pieces`` (user-defined), then ``text``'s characters."""
    import sentencepiece as spm  # a funasr dependency

    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([text]),
        model_writer=buf,
        model_type="char",
        vocab_size=vocab_size,
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


def sensevoice_sentencepiece() -> bytes:
    """Placeholder sentencepiece model of SenseVoice's size with its tag ids (see module doc)."""
    import sentencepiece as spm  # a funasr dependency

    filler = iter(cjk_characters(SENSEVOICE_VOCAB))
    pieces = [
        SENSEVOICE_TAGS[i] if i in SENSEVOICE_TAGS else next(filler) for i in range(3, SENSEVOICE_VOCAB)
    ]
    data = _sentencepiece("ab", SENSEVOICE_VOCAB, pieces)  # any text: every piece is user-defined
    sp = spm.SentencePieceProcessor(model_proto=data)
    if sp.get_piece_size() != SENSEVOICE_VOCAB or sp.piece_to_id("<|woitn|>") != 25017:
        raise RuntimeError(f"placeholder sentencepiece model has {sp.get_piece_size()} pieces")
    return data


def tiny_sensevoice_sentencepiece(chars: list[str]) -> bytes:
    """SenseVoice's tag ids, reserved pieces in the other slots below 25055, then one piece per character."""
    pieces = [SENSEVOICE_TAGS.get(i, f"<|reserved_{i}|>") for i in range(3, SENSEVOICE_VOCAB)]
    return _sentencepiece("".join(chars), SENSEVOICE_VOCAB + len(chars), pieces)


def _speechlike(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Harmonic 'syllables' with gliding pitch, pauses and a little noise (CMVN statistics)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 120 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t), 0, None)  # ~half of the time silent
    return (0.1 * envelope * voiced + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def write_cmvn(path: Path, seed: int, *, published_layout: bool = True) -> None:
    """``am.mvn``: Kaldi nnet text (``<AddShift>`` -mean, ``<Rescale>`` 1/std) of LFR fbank, 560 wide.

    ``published_layout``: the published file's line layout, trailing spaces and 7 significant
    digits (see the module docstring); otherwise the tiny models' plain layout with 6 decimals.
    """
    frontend = funasr_tables().frontend_classes["WavFrontend"](**FRONTEND_CONF, dither=0.0)
    wave = torch.from_numpy(_speechlike(seed=seed))[None]
    feats, _ = frontend(wave, [wave.shape[1]])
    feats = feats[0].double()
    shift = (-feats.mean(0)).tolist()
    scale = (1.0 / feats.std(0).clamp_min(1e-3)).tolist()
    dim = len(shift)
    number, space = ("{:.7g}", " ") if published_layout else ("{:.6f}", "")

    def row(values: list[float]) -> str:
        return "<LearnRateCoef> 0 [ " + " ".join(number.format(v) for v in values) + " ]"

    lines = [f"<Nnet>{space}", f"<Splice> {dim} {dim}", "[ 0 ]", f"<AddShift> {dim} {dim}{space}", row(shift)]
    lines += [f"<Rescale> {dim} {dim}", row(scale), f"</Nnet>{space}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _build_and_save(out_dir: Path, config: dict[str, Any], tokenizer_conf: dict[str, Any], seed: int) -> None:
    """Build the model as funasr's AutoModel does and save ``model.pt`` (a plain fp32 state dict)."""
    tables = funasr_tables()
    tokenizer = tables.tokenizer_classes[config["tokenizer"]](**tokenizer_conf)
    frontend_conf = dict(config["frontend_conf"], cmvn_file=str(out_dir / CMVN_FILE))
    frontend = tables.frontend_classes[config["frontend"]](**frontend_conf)
    token_list = getattr(tokenizer, "token_list", None)
    vocab_size = len(token_list) if token_list is not None else tokenizer.get_vocab_size()
    kwargs = {**config.get("model_conf", {}), **config}
    kwargs.update(vocab_size=vocab_size, input_size=frontend.output_size())
    torch.manual_seed(seed)
    net = tables.model_classes[config["model"]](**kwargs)
    torch.save(net.state_dict(), str(out_dir / NATIVE_WEIGHTS_FILE))


def _write_yaml(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def write_paraformer(out_dir: Path, *, layers: int | None = None, seed: int = 0) -> Path:
    config = paraformer_config(layers)
    _write_yaml(out_dir / CONFIG_FILE, config)
    tokens = paraformer_tokens()
    write_json(out_dir / TOKENS_FILE, tokens, indent=None)
    (out_dir / SEG_DICT_FILE).write_text(seg_dict_text(tokens), encoding="utf-8")
    write_cmvn(out_dir / CMVN_FILE, seed)
    write_json(
        out_dir / "configuration.json",
        configuration_json(
            "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
            "",
            {"token_list": TOKENS_FILE, "seg_dict_file": SEG_DICT_FILE},
        ),
    )
    tok_conf = dict(
        config["tokenizer_conf"], token_list=str(out_dir / TOKENS_FILE), seg_dict=str(out_dir / SEG_DICT_FILE)
    )
    _build_and_save(out_dir, config, tok_conf, seed)
    return out_dir


def write_sensevoice(out_dir: Path, *, layers: int | None = None, seed: int = 0) -> Path:
    import sentencepiece as spm  # a funasr dependency

    config = sensevoice_config(layers)
    _write_yaml(out_dir / CONFIG_FILE, config)
    model = sensevoice_sentencepiece()
    (out_dir / SENSEVOICE_BPE).write_bytes(model)
    sp = spm.SentencePieceProcessor(model_proto=model)
    write_json(out_dir / TOKENS_FILE, [sp.id_to_piece(i) for i in range(sp.get_piece_size())], indent=None)
    write_cmvn(out_dir / CMVN_FILE, seed)
    write_json(
        out_dir / "configuration.json",
        configuration_json(
            "iic/SenseVoiceSmall", "FunAudioLLM/SenseVoiceSmall", {"bpemodel": SENSEVOICE_BPE}
        ),
    )
    tok_conf = dict(config["tokenizer_conf"], bpemodel=str(out_dir / SENSEVOICE_BPE))
    _build_and_save(out_dir, config, tok_conf, seed)
    return out_dir


# the tiny models: the real sections a model needs (in this order), with these dimensions, no dropout
TINY_SECTIONS = {
    "paraformer-large": ("model", "model_conf", "encoder", "encoder_conf", "decoder", "decoder_conf",
                         "predictor", "predictor_conf", "frontend", "frontend_conf", "tokenizer", "tokenizer_conf"),
    "sensevoice-small": ("model", "model_conf", "encoder", "encoder_conf", "frontend", "frontend_conf",
                         "tokenizer", "tokenizer_conf"),
}  # fmt: skip
TINY_DIMS = {"output_size": 64, "idim": 64, "attention_heads": 2, "linear_units": 128, "tp_blocks": 1}
TINY_LAYERS = 2


def tiny_config(name: str) -> dict[str, Any]:
    """The real ``config.yaml`` of ``name`` cut to the tiny model (model files named as the library does)."""
    real = REAL_CONFIGS[name](TINY_LAYERS)
    config: dict[str, Any] = {}
    for section in TINY_SECTIONS[name]:
        value = copy.deepcopy(real[section])
        if isinstance(value, dict):
            for key in value:
                if key in TINY_DIMS:
                    value[key] = TINY_DIMS[key]
                elif key.endswith("dropout_rate"):
                    value[key] = 0.0
        config[section] = value
    config["frontend_conf"] = dict(FRONTEND_CONF, dither=0.0, cmvn_file=CMVN_FILE)
    if name == "paraformer-large":
        config["tokenizer_conf"]["token_list"] = TOKENS_FILE
    else:
        config["tokenizer_conf"]["bpemodel"] = BPE_FILE
    return config


def characters(texts: list[str]) -> list[str]:
    """Sorted distinct characters of the normalized ``texts``."""
    chars = sorted({ch for t in texts for ch in normalize(t)})
    if not chars:
        raise ConfigError("a tiny funasr model needs texts with at least one CJK character, digit or letter")
    return chars


def build_tiny(name: str, out_dir: Path, texts: list[str], *, seed: int = 0) -> Path:
    """Randomly initialised tiny ``name`` saved to ``out_dir`` by ``FunASRModel.save``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chars = characters(texts)
    write_cmvn(out_dir / CMVN_FILE, seed, published_layout=False)
    if name == "paraformer-large":
        tokens = ["<blank>", "<s>", "</s>", *chars, "<unk>"]
        (out_dir / TOKENS_FILE).write_text(json.dumps(tokens, ensure_ascii=False), encoding="utf-8")
    else:
        (out_dir / BPE_FILE).write_bytes(tiny_sensevoice_sentencepiece(chars))
    _write_yaml(out_dir / CONFIG_FILE, tiny_config(name))
    files = read_model_dir(out_dir)
    torch.manual_seed(seed)
    net, tokenizer, frontend = build_components(files)
    FunASRModel(net.eval(), tokenizer, frontend, files, get_spec(name), "cpu", torch.float32).save(out_dir)
    return out_dir


REAL_CONFIGS = {"paraformer-large": paraformer_config, "sensevoice-small": sensevoice_config}
KINDS = {"paraformer": "paraformer-large", "sensevoice": "sensevoice-small"}  # FunASRModel kind -> name
