"""Short audio context for Whisper: frame buckets, the sliced-position encoder, the training loss."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import WhisperConfig, WhisperForConditionalGeneration

from asr.errors import ConfigError
from asr.models.whisper.context import (
    audio_context_frames,
    consistency_loss,
    encode,
    parse_audio_context,
    saved_context,
)


def test_frames_round_up_to_buckets_with_a_floor() -> None:
    assert audio_context_frames([2.0, 3.2], "full") == 3000
    assert audio_context_frames([2.0, 3.2], "auto") == 1000  # floor 10 s
    assert audio_context_frames([8.9], "auto") == 1000  # 8.9 + 1 s margin fits in 10 s
    assert audio_context_frames([9.1], "auto") == 1500  # 10.1 s -> the 15 s bucket
    assert audio_context_frames([14.0, 3.0], "auto") == 1500
    assert audio_context_frames([24.5], "auto") == 3000
    assert audio_context_frames([45.0], "auto") == 3000  # never beyond 30 s
    assert audio_context_frames([2.0], "5") == 500  # a number is auto with that floor
    assert audio_context_frames([6.0], "5") == 1000
    assert audio_context_frames([2.0], "7.5") == 750


@pytest.mark.parametrize("bad", ["short", "0", "31", "nan", "-5"])
def test_bad_context_is_a_config_error(bad: str) -> None:
    with pytest.raises(ConfigError, match="audio_context must be"):
        parse_audio_context(bad)


def _tiny(layers: int = 2) -> WhisperForConditionalGeneration:
    torch.manual_seed(0)
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=layers,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=1500,
        max_target_positions=64,
        decoder_start_token_id=1,
        pad_token_id=0,
        eos_token_id=2,
        bos_token_id=1,
    )
    return WhisperForConditionalGeneration(config).eval()


def test_encode_at_full_context_is_transformers_forward() -> None:
    encoder = _tiny().model.encoder
    feats = torch.randn(2, 80, 3000)
    with torch.no_grad():
        assert torch.equal(encode(encoder, feats), encoder(feats).last_hidden_state)


def test_short_encode_matches_a_model_built_for_that_length() -> None:
    """Reference: transformers' own encoder with max_source_positions = the short length and the
    first positional embeddings copied, which is what slicing must equal."""
    model = _tiny()
    frames = 1000
    short_config = copy.deepcopy(model.config)
    short_config.max_source_positions = frames // 2
    reference = WhisperForConditionalGeneration(short_config).eval().model.encoder
    state = model.model.encoder.state_dict()
    state["embed_positions.weight"] = state["embed_positions.weight"][: frames // 2]
    reference.load_state_dict(state)
    feats = torch.randn(2, 80, frames)
    with torch.no_grad():
        ours = encode(model.model.encoder, feats)
        expected = reference(feats).last_hidden_state
    assert ours.shape == (2, 500, 32)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)


def test_encode_refuses_odd_or_too_long_input() -> None:
    encoder = _tiny().model.encoder
    for frames in (999, 3002):
        with pytest.raises(ValueError, match="even number of frames"):
            encode(encoder, torch.randn(1, 80, frames))


def test_consistency_loss_is_zero_at_full_length_and_keeps_train_mode() -> None:
    encoder = _tiny().model.encoder.train()
    feats = torch.randn(1, 80, 3000)
    encoder.eval()
    with torch.no_grad():
        full = encoder(feats).last_hidden_state
    encoder.train()
    assert float(consistency_loss(encoder, full, feats)) == 0.0
    assert encoder.training
    short = encode(encoder.eval(), feats[:, :, :1000])
    assert float(consistency_loss(encoder, short, feats)) > 0.0  # padding context changes the states


def test_stock_checkpoints_decode_at_auto() -> None:
    class GC:
        pass

    gc = GC()
    assert saved_context(gc) == "auto"
    gc.audio_context = "full"
    assert saved_context(gc) == "full"
    gc.audio_context = "auto"
    assert saved_context(gc) == "auto"


def test_whisper_family_trains_and_records_short_context(tmp_path) -> None:
    """collate cuts the features to the context; the loss runs there, with and without the
    consistency term; the saved checkpoint decodes at the same context by default."""
    from asr.models import load_model
    from asr.models.spec import DecodeOptions
    from asr.models.whisper.options import WhisperDecodeOptions
    from tests.model_factory import build

    path = build("whisper-tiny", tmp_path / "tiny")
    asr_model = load_model(path, device="cpu", dtype="fp32")
    assert asr_model.audio_context == "auto"  # stock: records none
    asr_model.set_audio_context("full")
    assert asr_model.collate([np.zeros(16000, np.float32)], ["一"])["input_features"].shape[-1] == 3000
    waves = [np.zeros(16000 * 3, np.float32), np.zeros(16000 * 4, np.float32)]
    asr_model.set_trainable("full")
    asr_model.set_audio_context("auto")
    batch = asr_model.collate(waves, ["一", "二三"])
    assert batch["input_features"].shape[-1] == 1000 and "context_frames" not in batch
    asr_model.module.train()
    plain = asr_model.loss(batch)
    plain.backward()

    asr_model.set_audio_context("auto", consistency_weight=2.0)
    batch = asr_model.collate(waves, ["一", "二三"])
    assert batch["input_features"].shape[-1] == 3000 and int(batch["context_frames"]) == 1000
    torch.manual_seed(0)
    with_term = asr_model.loss(batch)
    asr_model.module.eval()
    with torch.no_grad():
        ce = asr_model.model(
            encoder_outputs=(encode(asr_model._base().model.encoder, batch["input_features"][:, :, :1000]),),
            labels=batch["labels"],
        ).loss
    assert float(with_term) > float(ce)  # the consistency term is added

    asr_model.save(tmp_path / "trained")
    reloaded = load_model(tmp_path / "trained", device="cpu", dtype="fp32")
    assert reloaded.audio_context == "auto"
    settings = reloaded.decoding_settings(DecodeOptions())
    assert settings["audio_context"] == "auto"
    assert reloaded.decoding_settings(WhisperDecodeOptions(audio_context="full"))["audio_context"] == "full"
    texts = reloaded.transcribe(waves, WhisperDecodeOptions(audio_context="auto"))
    assert len(texts) == 2
    # a full-context decode of the short-context model still runs (what a plain pipeline does)
    captured: list[int] = []
    encoder = reloaded._base().model.encoder
    hook = encoder.register_forward_pre_hook(
        lambda _m, args, kwargs: captured.append((args or [kwargs.get("input_features")])[0].shape[-1]),
        with_kwargs=True,
    )
    assert len(reloaded.transcribe(waves, WhisperDecodeOptions(audio_context="full"))) == 2
    hook.remove()
    assert captured == [3000]


def test_lora_consistency_target_is_the_original_encoder(tmp_path, monkeypatch) -> None:
    """With LoRA the 30 s target comes from the model with its adapters disabled (a fixed teacher),
    not from the encoder being trained."""
    import asr.models.whisper.model as whisper_module
    from asr.models import load_model
    from tests.model_factory import build

    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    encoder = asr_model._base().model.encoder
    feats_full = asr_model.collate(
        [np.random.default_rng(0).standard_normal(48000).astype(np.float32)], ["一"]
    )
    with torch.no_grad():
        original = encoder(feats_full["input_features"]).last_hidden_state
    asr_model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    with torch.no_grad():
        for name, p in asr_model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    asr_model.set_audio_context("auto", consistency_weight=1.0)
    batch = asr_model.collate([np.random.default_rng(0).standard_normal(48000).astype(np.float32)], ["一"])
    targets: list[torch.Tensor] = []

    def spy(encoder, short, full, teacher=None):
        with torch.no_grad(), teacher:
            targets.append(encoder(full).last_hidden_state)
        return short.sum() * 0

    monkeypatch.setattr(whisper_module, "consistency_loss", spy)
    asr_model.module.train()
    asr_model.loss(batch)
    asr_model.module.eval()
    with torch.no_grad():
        adapted = encoder(batch["input_features"]).last_hidden_state
    assert torch.equal(targets[0], original)
    assert not torch.allclose(adapted, original)  # the adapters do change the encoder


def test_lora_consistency_target_is_cached_per_clip(tmp_path) -> None:
    """With utterance keys the fixed teacher's 30 s states are computed once per clip (and
    equal the original encoder's, up to the cache's fp16 rounding); later steps skip that forward."""
    from asr.models import load_model
    from tests.model_factory import build

    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    encoder = asr_model._base().model.encoder
    wave = np.random.default_rng(0).standard_normal(48000).astype(np.float32)
    asr_model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    asr_model.set_audio_context("auto", consistency_weight=1.0)
    batch = {**asr_model.collate([wave], ["一"]), "keys": ["clip"]}
    with torch.no_grad():
        original = encoder(batch["input_features"]).last_hidden_state[:, :500]
    with torch.no_grad():
        for name, p in asr_model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    asr_model.module.train()
    widths: list[int] = []  # full encoder forwards (the student's short one runs its layers directly)
    hook = encoder.register_forward_pre_hook(lambda _m, args: widths.append(args[0].shape[-1]))
    first = asr_model.loss(batch)
    cached = asr_model._encoder_cache["clip@500:teacher"]
    assert cached.dtype == torch.float16 and torch.allclose(cached.float(), original[0], atol=2e-3)
    assert widths == [3000]
    second = asr_model.loss(batch)
    hook.remove()
    assert widths == [3000]  # no second 30 s teacher run
    assert float(second) == pytest.approx(float(first), rel=1e-5)


@pytest.mark.parametrize("context", ["full", "auto", "15"])
def test_recorded_context_survives_load_and_save(tmp_path, context: str) -> None:
    """A LoRA checkpoint's context (its own generation config; the base's has none) is written
    again by save() after loading, which is what the merged export does."""
    import json

    from asr.models import load_model
    from asr.train.finetune_config import FinetuneConfig
    from asr.train.model_setup import configure_model
    from tests.model_factory import build

    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    configure_model(asr_model, FinetuneConfig(method="lora", model_options={"audio_context": context}))
    asr_model.save(tmp_path / "checkpoint")
    loaded = load_model(tmp_path / "checkpoint", device="cpu", dtype="fp32")
    assert loaded.audio_context == context
    loaded.save(tmp_path / "again")
    saved = json.loads((tmp_path / "again" / "generation_config.json").read_text(encoding="utf-8"))
    assert saved["audio_context"] == context
    assert load_model(tmp_path / "again", device="cpu", dtype="fp32").audio_context == context


def test_short_log_mel_is_the_start_of_the_30_s_one(tmp_path) -> None:
    """Features computed for the context alone equal the first frames of Whisper's 30 s features
    (so decoding and training compute a third of them at 10 s, with the same result)."""
    from asr.models import load_model
    from tests.model_factory import build

    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 4) / 16000
    waves = [
        (0.3 * np.sin(2 * np.pi * 220 * t) * rng.uniform(0.2, 1.0, t.size)).astype(np.float32),
        (0.05 * rng.standard_normal(16000 * 7)).astype(np.float32),
        np.zeros(16000 * 2, np.float32),  # digital silence: the normalisation's maximum is padding's
    ]
    full = asr_model.processor.feature_extractor(
        waves, sampling_rate=16000, return_tensors="np"
    ).input_features
    for frames in (1000, 1500, 3000):
        short = asr_model.log_mel(waves, frames, return_tensors="np")
        assert short.shape == (3, 80, frames)
        np.testing.assert_array_equal(short, full[:, :, :frames])
    assert torch.equal(asr_model.features(waves, 1000), torch.from_numpy(full[:, :, :1000]))
