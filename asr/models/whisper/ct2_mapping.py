"""CTranslate2 Whisper variable names -> transformers ``WhisperForConditionalGeneration`` weights."""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.errors import ASRError

_GELU = 3


def _scalar(variables: dict[str, np.ndarray], name: str, default: int | None = None) -> int:
    if name not in variables:
        if default is None:
            raise ASRError(f"not a Whisper CTranslate2 model: variable {name} is missing")
        return default
    return int(np.asarray(variables[name]).reshape(-1)[0])


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def _split_rows(array: np.ndarray, n: int, name: str) -> list[np.ndarray]:
    if array.shape[0] % n:
        raise ASRError(
            f"not a Whisper CTranslate2 model: {name} has {array.shape[0]} rows, not divisible by {n}"
        )
    return np.split(array, n, axis=0)


def ct2_whisper_to_hf(variables: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Map CTranslate2 Whisper variables to ``(WhisperConfig kwargs, transformers state dict)``.

    Fused projections are split: ``self_attention/linear_0`` = [q; k; v],
    cross ``attention/linear_1`` = [k; v]. Whisper's k_proj has no bias; CTranslate2
    stores zeros there, and a non-zero k bias is rejected (transformers cannot hold it).
    """
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        if name not in variables:
            raise ASRError(f"not a Whisper CTranslate2 model: variable {name} is missing")
        used.add(name)
        return variables[name]

    state: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = get(f"{src}/weight")
        state[f"{dst}.bias"] = get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = get(f"{src}/gamma")
        state[f"{dst}.bias"] = get(f"{src}/beta")

    def qkv(dst: str, weight: np.ndarray, bias: np.ndarray, names: tuple[str, ...], src: str) -> None:
        for proj, w, b in zip(
            names, _split_rows(weight, len(names), src), _split_rows(bias, len(names), src), strict=True
        ):
            state[f"{dst}.{proj}.weight"] = w
            if proj == "k_proj":
                if np.any(b != 0):
                    raise ASRError(f"{src}: non-zero key bias; Whisper's k_proj has no bias, cannot convert")
            else:
                state[f"{dst}.{proj}.bias"] = b

    quantized = [n for n in variables if n.endswith("_scale") and variables[n].ndim]
    if quantized:
        raise ASRError(
            f"quantized CTranslate2 model ({quantized[0]}): convert a float16/float32 model instead"
        )

    def self_attention(src: str, dst: str) -> None:
        fused = f"{src}/self_attention/linear_0"
        qkv(
            f"{dst}.self_attn",
            get(f"{fused}/weight"),
            get(f"{fused}/bias"),
            ("q_proj", "k_proj", "v_proj"),
            fused,
        )
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")

    def feed_forward(src: str, dst: str) -> None:
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    enc_layers, dec_layers = _count_layers(variables, "encoder"), _count_layers(variables, "decoder")
    if not enc_layers or not dec_layers:
        raise ASRError("not a Whisper CTranslate2 model: no encoder/decoder layers found")
    for name, expected in (
        ("decoder/activation", _GELU),
        ("decoder/pre_norm", 1),
        ("decoder/scale_embeddings", 0),
    ):
        if _scalar(variables, name, expected) != expected:
            raise ASRError(
                f"not a standard Whisper model: {name} = {_scalar(variables, name)}, expected {expected}"
            )
    used.update(n for n in variables if variables[n].ndim == 0)

    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    state["model.encoder.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(enc_layers):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        self_attention(src, dst)
        feed_forward(src, dst)

    embed = get("decoder/embeddings/weight")
    state["model.decoder.embed_tokens.weight"] = embed
    state["model.decoder.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(dec_layers):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention(src, dst)
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        fused = f"{src}/attention/linear_1"
        qkv(f"{dst}.encoder_attn", get(f"{fused}/weight"), get(f"{fused}/bias"), ("k_proj", "v_proj"), fused)
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        feed_forward(src, dst)

    if "decoder/projection/bias" in variables:
        raise ASRError(
            "decoder/projection/bias is set; Whisper's output projection has no bias, cannot convert"
        )
    proj = get("decoder/projection/weight")
    tied = proj is embed or (proj.shape == embed.shape and np.array_equal(proj, embed))
    if not tied:
        state["proj_out.weight"] = proj

    unused = sorted(set(variables) - used)
    if unused:
        raise ASRError(f"not a standard Whisper model: unexpected variables {unused[:5]}")

    d_model = embed.shape[1]
    conv1 = state["model.encoder.conv1.weight"]
    config = {
        "vocab_size": int(embed.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "d_model": int(d_model),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": _scalar(variables, "encoder/num_heads"),
        "decoder_attention_heads": _scalar(variables, "decoder/num_heads"),
        "encoder_ffn_dim": int(state["model.encoder.layers.0.fc1.weight"].shape[0]),
        "decoder_ffn_dim": int(state["model.decoder.layers.0.fc1.weight"].shape[0]),
        "max_source_positions": int(state["model.encoder.embed_positions.weight"].shape[0]),
        "max_target_positions": int(state["model.decoder.embed_positions.weight"].shape[0]),
        "tie_word_embeddings": tied,
    }
    return config, state
