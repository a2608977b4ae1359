"""freeze_cross_kv: frozen cross-attention key/value projections, cached per clip in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.errors import ConfigError
from asr.models import load_model
from tests.model_factory import build

TEXTS = ["一二", "三四五"]


def _batch(asr_model, keys: list[str]) -> dict:
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(16000 * s).astype(np.float32) * 0.1 for s in (2, 3)]
    return {**asr_model.collate(waves, TEXTS), "keys": keys}


def _randomize_adapters(asr_model) -> None:
    """Non-zero LoRA B, so the adapters change the decoder (fresh ones add exactly zero)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in asr_model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)


def _grads(asr_model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in asr_model.module.named_parameters() if p.grad is not None}


def test_lora_leaves_cross_attention_kv_plain_and_frozen(tmp_path) -> None:
    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    asr_model.freeze_cross_attention_kv()
    asr_model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0, "scope": "decoder"})
    adapted = {n.split(".lora_A")[0] for n, _ in asr_model.module.named_parameters() if ".lora_A" in n}
    assert adapted, "LoRA applied nowhere"
    assert not [n for n in adapted if "encoder_attn.k_proj" in n or "encoder_attn.v_proj" in n]
    assert [n for n in adapted if "encoder_attn.q_proj" in n] and [
        n for n in adapted if "self_attn.k_proj" in n
    ]
    assert asr_model.encoder_frozen()


def test_decoder_method_freezes_only_the_cross_kv_projections(tmp_path) -> None:
    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    asr_model.freeze_cross_attention_kv()
    asr_model.set_trainable("decoder")
    frozen = {n for n, p in asr_model.module.model.decoder.named_parameters() if not p.requires_grad}
    assert frozen and all(".encoder_attn.k_proj." in n or ".encoder_attn.v_proj." in n for n in frozen)
    assert any(".encoder_attn.q_proj." in n for n, p in asr_model.module.model.decoder.named_parameters()
               if p.requires_grad)  # fmt: skip


@pytest.mark.parametrize("method", ["lora", "decoder"])
def test_cached_cross_kv_gives_the_plain_loss_and_gradients(tmp_path, method: str) -> None:
    """Same loss and gradients as the uncached forward (up to the cache's fp16 rounding); the
    second step reads the cache: no k/v projection and no encoder run."""
    path = build("whisper-tiny", tmp_path / "tiny")
    cached = load_model(path, device="cpu", dtype="fp32")
    plain = load_model(path, device="cpu", dtype="fp32")
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "scope": "decoder"} if method == "lora" else None
    for model in (cached, plain):
        model.freeze_cross_attention_kv()
        torch.manual_seed(0)  # LoRA A starts random
        model.set_trainable(method, lora)
        model.set_audio_context("auto")
        _randomize_adapters(model)
        model.module.train()

    plain_batch = _batch(plain, ["a", "b"])
    del plain_batch["keys"]  # no keys: nothing cached, the ordinary forward
    plain_loss = plain.loss(plain_batch)
    plain_loss.backward()
    reference = _grads(plain)
    assert plain._encoder_cache == {}

    loss = cached.loss(_batch(cached, ["a", "b"]))
    loss.backward()
    assert sorted(cached._encoder_cache) == ["a@1000:cross-kv", "b@1000:cross-kv"]
    assert float(loss) == pytest.approx(float(plain_loss), rel=2e-3)
    grads = _grads(cached)
    assert grads.keys() == reference.keys() and grads
    for name, grad in grads.items():
        assert torch.allclose(grad, reference[name], rtol=2e-2, atol=1e-4), name

    base = cached._base()
    calls: list[str] = []
    hooks = [base.model.encoder.register_forward_hook(lambda *_: calls.append("encoder"))]
    for layer in base.model.decoder.layers:
        hooks.append(layer.encoder_attn.k_proj.register_forward_hook(lambda *_: calls.append("k_proj")))
    again = cached.loss(_batch(cached, ["a", "b"]))
    for hook in hooks:
        hook.remove()
    assert calls == [] and float(again) == pytest.approx(float(loss), rel=1e-6)


def test_adapted_cross_kv_is_not_cached(tmp_path) -> None:
    """Without freeze_cross_kv, decoder-scope LoRA adapts the k/v projections: only the encoder
    output is cached (the keys/values change every step)."""
    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    asr_model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0, "scope": "decoder"})
    asr_model.set_audio_context("auto")
    asr_model.module.train()
    asr_model.loss(_batch(asr_model, ["a", "b"]))
    assert sorted(asr_model._encoder_cache) == ["a@1000", "b@1000"]


def test_other_families_refuse_it(tmp_path) -> None:
    asr_model = load_model(build("xlsr-53-zh", tmp_path / "ctc", texts=TEXTS), device="cpu", dtype="fp32")
    with pytest.raises(ConfigError, match="the ctc family has no options of its own, got freeze_cross_kv"):
        asr_model.train_options({"freeze_cross_kv": True})


def test_a_training_encoder_gets_a_warning_not_a_cache(tmp_path, caplog) -> None:
    from asr.train.finetune_config import FinetuneConfig
    from asr.train.model_setup import configure_model

    asr_model = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    with caplog.at_level("WARNING"):
        configure_model(asr_model, FinetuneConfig(method="lora", model_options={"freeze_cross_kv": True}))  # scope all
    assert "nothing can be cached" in caplog.text
    caplog.clear()
    decoder_only = load_model(build("whisper-tiny", tmp_path / "tiny"), device="cpu", dtype="fp32")
    with caplog.at_level("WARNING"):
        configure_model(decoder_only, FinetuneConfig(method="decoder", model_options={"freeze_cross_kv": True}))
    assert "nothing can be cached" not in caplog.text


def test_gradient_checkpointing_falls_back_to_the_encoder_cache(tmp_path) -> None:
    """transformers drops the cache under gradient checkpointing: the cross-attention K/V are then
    not cached (the layers would otherwise project the stand-in zeros), and the loss is the plain one."""
    path = build("whisper-tiny", tmp_path / "tiny")
    models = [load_model(path, device="cpu", dtype="fp32") for _ in range(2)]
    for model in models:
        model.freeze_cross_attention_kv()
        model.set_trainable("decoder")
        model.set_audio_context("auto")
        model.module.train()
    checkpointed, plain = models
    checkpointed.module.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    loss = checkpointed.loss(_batch(checkpointed, ["a", "b"]))
    assert sorted(checkpointed._encoder_cache) == ["a@1000", "b@1000"]
    batch = _batch(plain, ["a", "b"])
    del batch["keys"]
    assert float(loss) == pytest.approx(float(plain.loss(batch)), rel=2e-3)
