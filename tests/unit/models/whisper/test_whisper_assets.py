"""Offline Whisper tokenizer/generation config, and the CTranslate2 Whisper reader/importer."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from asr.errors import ASRError
from asr.models.whisper import assets as whisper_assets
from asr.models.whisper import ct2_import
from asr.models.whisper.assets import (
    LANGUAGES,
    vocab_layout,
    whisper_feature_extractor,
    whisper_generation_config,
    whisper_processor,
    whisper_tokenizer,
)
from asr.models.whisper.ct2_import import import_ct2
from asr.models.whisper.ct2_reader import read_ct2_model
from asr.models.whisper.ct2_source import resolve_ct2_source

openai_tokenizer = pytest.importorskip("whisper.tokenizer", reason="openai-whisper is a dev dependency")

TEXTS = [
    "长沙话好咯",
    "你吃饭了冇？我哋去饮茶啦。",
    "Hello world, it's 3:45 pm!",
    "混合 mixed 文本 123 ♪♪ (music)",
    "  spaces\n\nand newlines\t",
]


# ---------------------------------------------------------------------------------------------
# tokenizer and generation config


@pytest.mark.parametrize(("multilingual", "num_languages"), [(True, 99), (True, 100), (False, 99)])
def test_tokenizer_ids_match_openai(multilingual: bool, num_languages: int) -> None:
    ours = whisper_tokenizer(multilingual, num_languages)
    ref = openai_tokenizer.get_tokenizer(multilingual, num_languages=num_languages)
    for text in TEXTS:
        ids = ours.encode(text, add_special_tokens=False)
        assert ids == ref.encode(text), text
        assert ours.decode(ids) == text
    assert len(ref.special_tokens) == 1509 + num_languages
    for token, token_id in ref.special_tokens.items():
        assert ours.convert_tokens_to_ids(token) == token_id, token
    assert len(ours) == ref.encoding.n_vocab
    assert ours.pad_token_id == ours.eos_token_id == ref.eot


def test_tokenizer_prefix_and_copies() -> None:
    tok = whisper_tokenizer()
    tok.set_prefix_tokens(language="zh", task="transcribe")
    ids = tok("长沙").input_ids
    assert ids[:4] == [50258, 50260, 50359, 50363] and ids[-1] == 50257
    assert tok.decode(ids, skip_special_tokens=True) == "长沙"
    # each call returns an independent tokenizer: the prefix above does not leak
    assert whisper_tokenizer()("长沙").input_ids[:2] == [50258, 50363]


def test_generation_config_base() -> None:
    from transformers import WhisperConfig

    gen = whisper_generation_config(
        WhisperConfig(vocab_size=51865, decoder_layers=6, decoder_attention_heads=8)
    )
    assert gen.lang_to_id["<|zh|>"] == 50260
    assert "<|yue|>" not in gen.lang_to_id  # 99-language models have no Cantonese token
    assert len(gen.lang_to_id) == 99
    assert gen.task_to_id == {"transcribe": 50359, "translate": 50358}
    assert (gen.decoder_start_token_id, gen.no_timestamps_token_id, gen.prev_sot_token_id) == (
        50258,
        50363,
        50361,
    )
    assert gen.forced_decoder_ids is None and gen.max_length == 448 and gen.is_multilingual
    assert gen.begin_suppress_tokens == [220, 50257]
    assert gen.alignment_heads == [[layer, head] for layer in range(3, 6) for head in range(8)]

    ref = openai_tokenizer.get_tokenizer(True)
    # OpenAI's decoding default: "-1" (non-speech symbols) plus the control tokens
    expected = set(ref.non_speech_tokens) | {ref.translate, ref.transcribe, ref.sot, ref.sot_prev, ref.sot_lm}
    expected.add(ref.no_speech)
    assert gen.suppress_tokens == sorted(expected)


def test_generation_config_large_v3_has_yue() -> None:
    from transformers import WhisperConfig

    gen = whisper_generation_config(WhisperConfig(vocab_size=51866), alignment_heads=[[1, 2]])
    assert gen.lang_to_id["<|zh|>"] == 50260
    assert gen.lang_to_id["<|yue|>"] == 50358
    assert gen.task_to_id == {"transcribe": 50360, "translate": 50359}
    assert gen.alignment_heads == [[1, 2]]
    assert list(LANGUAGES)[:2] == ["en", "zh"] and LANGUAGES["yue"] == "cantonese"


def test_english_only_generation_config() -> None:
    from transformers import WhisperConfig

    gen = whisper_generation_config(WhisperConfig(vocab_size=51864))
    assert not gen.is_multilingual and gen.lang_to_id == {}
    assert gen.decoder_start_token_id == 50257 and gen.no_timestamps_token_id == 50362


def test_vocab_layout_rejects_unknown_sizes() -> None:
    assert vocab_layout(51865) == (True, 99)
    with pytest.raises(ASRError, match="51000"):
        vocab_layout(51000)


def test_feature_extractor_and_processor() -> None:
    assert whisper_feature_extractor().feature_size == 80
    assert whisper_feature_extractor(128).feature_size == 128
    with pytest.raises(ASRError, match="mel bins"):
        whisper_feature_extractor(64)
    proc = whisper_processor()
    feats = proc.feature_extractor(np.zeros(16000, dtype=np.float32), sampling_rate=16000).input_features
    assert np.asarray(feats).shape == (1, 80, 3000)


def test_missing_asset_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(whisper_assets.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ASRError, match="pip install openai-whisper"):
        whisper_assets._asset("multilingual.tiktoken")


# ---------------------------------------------------------------------------------------------
# model.bin reader on hand-built files


def _string(s: str) -> bytes:
    raw = s.encode("utf-8")
    return struct.pack("<H", len(raw) + 1) + raw + b"\0"


def write_ct2(path: Path, spec: str, variables: dict[str, np.ndarray], aliases=(), version: int = 6) -> Path:
    """Write ``model.bin`` following ctranslate2's ``ModelSpec._serialize`` layout."""
    type_ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    out = (
        struct.pack("<I", version) + _string(spec) + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    )
    for name, value in sorted(variables.items()):
        out += _string(name) + struct.pack("<B", value.ndim)
        out += b"".join(struct.pack("<I", d) for d in value.shape)
        out += (
            struct.pack("<B", type_ids[str(value.dtype)]) + struct.pack("<I", value.nbytes) + value.tobytes()
        )
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases:
        out += _string(alias) + _string(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out)
    return path


def _toy_variables() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "decoder/embeddings/weight": rng.standard_normal((5, 3)).astype(np.float16),
        "decoder/num_heads": np.array(2, dtype=np.int16),
        "encoder/conv1/weight": rng.standard_normal((4, 2, 3)).astype(np.float32),
        "encoder/flag": np.array(1, dtype=np.int8),
    }


def test_reader_hand_built_roundtrip(tmp_path: Path) -> None:
    variables = _toy_variables()
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps({"lang_ids": [1, 2]}))
    write_ct2(
        tmp_path / "m" / "model.bin",
        "WhisperSpec",
        variables,
        [("decoder/projection/weight", "decoder/embeddings/weight")],
    )
    spec, got, config = read_ct2_model(tmp_path / "m")
    assert spec == "WhisperSpec"
    assert config == {"lang_ids": [1, 2], "spec_revision": 3}
    for name, value in variables.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape
        np.testing.assert_array_equal(got[name], value)
    assert got["decoder/projection/weight"] is got["decoder/embeddings/weight"]


def test_reader_truncated_and_trailing(tmp_path: Path) -> None:
    good = write_ct2(tmp_path / "good" / "model.bin", "WhisperSpec", _toy_variables()).read_bytes()
    for cut in (2, 20, 60, len(good) - 30, len(good) - 1):
        bad = tmp_path / f"cut{cut}" / "model.bin"
        bad.parent.mkdir()
        bad.write_bytes(good[:cut])
        with pytest.raises(ASRError, match="truncated"):
            read_ct2_model(bad)
    extra = tmp_path / "extra.bin"
    extra.write_bytes(good + b"\0\0")
    with pytest.raises(ASRError, match="unexpected bytes"):
        read_ct2_model(extra)


def test_reader_rejects_unknown_version(tmp_path: Path) -> None:
    path = write_ct2(tmp_path / "model.bin", "WhisperSpec", _toy_variables(), version=3)
    with pytest.raises(ASRError, match="binary version 3"):
        read_ct2_model(path)


def test_reader_parts_and_missing_part(tmp_path: Path) -> None:
    data = write_ct2(tmp_path / "whole" / "model.bin", "WhisperSpec", _toy_variables()).read_bytes()
    parts = tmp_path / "parts"
    parts.mkdir()
    for i, chunk in enumerate((data[:50], data[50:120], data[120:]), start=1):
        (parts / f"model.bin.part{i}").write_bytes(chunk)
    _, got, _ = read_ct2_model(parts)
    np.testing.assert_array_equal(got["encoder/conv1/weight"], _toy_variables()["encoder/conv1/weight"])
    assert resolve_ct2_source(str(parts)) == parts.resolve()
    (parts / "model.bin.part2").unlink()
    with pytest.raises(ASRError, match=r"model\.bin\.part2 is missing"):
        read_ct2_model(parts)
    with pytest.raises(ASRError, match="not a CTranslate2 model directory"):
        resolve_ct2_source(str(tmp_path / "whole" / ".."))


def test_import_rejects_other_specs(tmp_path: Path) -> None:
    src = write_ct2(tmp_path / "src" / "model.bin", "TransformerSpec", _toy_variables()).parent
    with pytest.raises(ASRError, match="not WhisperSpec"):
        import_ct2(src, tmp_path / "out")
    src2 = write_ct2(tmp_path / "src2" / "model.bin", "WhisperSpec", _toy_variables()).parent
    with pytest.raises(ASRError, match="not a Whisper CTranslate2 model"):
        import_ct2(src2, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_pypi_source() -> None:
    with pytest.raises(ASRError, match="pypi:whisper-base"):
        resolve_ct2_source("pypi:whisper-huge")


# ---------------------------------------------------------------------------------------------
# a tiny random Whisper through ctranslate2's own converter and back


@pytest.fixture(scope="module")
def tiny_ct2(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """(CTranslate2 dir written by ctranslate2's TransformersConverter, source state dict)."""
    pytest.importorskip("ctranslate2", reason="ctranslate2 is the optional ct2 extra")
    import torch
    from ctranslate2.converters import TransformersConverter
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    root = tmp_path_factory.mktemp("tiny")
    config = WhisperConfig(
        vocab_size=51865,
        d_model=16,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=50258,
        pad_token_id=50257,
        bos_token_id=50257,
        eos_token_id=50257,
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # make biases and norms non-trivial so a swapped mapping would show
        for name, p in model.named_parameters():
            if name.endswith("bias") or "layer_norm" in name:
                p.copy_(torch.randn_like(p))
    model.generation_config = whisper_generation_config(config)
    model.save_pretrained(root / "hf")
    whisper_processor().save_pretrained(root / "hf")
    TransformersConverter(str(root / "hf")).convert(str(root / "ct2"), quantization="float32")
    state = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return root / "ct2", state


def test_reader_on_converter_output(tiny_ct2: tuple[Path, dict]) -> None:
    ct2_dir, state = tiny_ct2
    spec, variables, config = read_ct2_model(ct2_dir)
    assert spec == "WhisperSpec" and config["spec_revision"] == 3
    assert variables["decoder/projection/weight"] is variables["decoder/embeddings/weight"]
    fused = variables["encoder/layer_1/self_attention/linear_0/weight"]
    assert fused.shape == (48, 16)
    np.testing.assert_array_equal(fused[16:32], state["model.encoder.layers.1.self_attn.k_proj.weight"])


def test_import_tiny_is_exact(tiny_ct2: tuple[Path, dict], tmp_path: Path) -> None:
    from safetensors.numpy import load_file
    from transformers import GenerationConfig, WhisperConfig

    ct2_dir, state = tiny_ct2
    out = import_ct2(ct2_dir, tmp_path / "out")
    assert ct2_import.is_complete_import(out)
    got = load_file(str(out / "model.safetensors"))
    expected = {k: v for k, v in state.items() if k != "proj_out.weight"}  # tied to embed_tokens
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)
    config = WhisperConfig.from_pretrained(out)
    assert (config.d_model, config.encoder_layers, config.decoder_attention_heads) == (16, 2, 2)
    assert config.tie_word_embeddings
    gen = GenerationConfig.from_pretrained(out)
    assert gen.lang_to_id["<|zh|>"] == 50260 and gen.forced_decoder_ids is None

    # a second import over a finished one is allowed; over a foreign non-empty directory it is not
    import_ct2(ct2_dir, out)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ASRError, match="not empty"):
        import_ct2(ct2_dir, foreign)
    assert (foreign / "notes.txt").read_text() == "mine"


def test_import_rejects_truncated_source(tiny_ct2: tuple[Path, dict], tmp_path: Path) -> None:
    ct2_dir, _ = tiny_ct2
    data = (ct2_dir / "model.bin").read_bytes()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(ASRError, match="truncated"):
        import_ct2(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
