"""Cached cross-attention keys/values for Whisper training with a frozen encoder.

With the encoder frozen its output per clip never changes, and if the decoder's cross-attention
key/value projections are frozen too (``freeze_cross_kv: true``), neither do the keys and values
every decoder layer computes from it: ``2 x layers x frames x d^2`` multiply-adds per clip and
step, more than the rest of the decoder on a short transcript. They are then computed once per
clip and handed to transformers through its own :class:`EncoderDecoderCache`, whose cross-attention
layers skip their ``k_proj``/``v_proj`` when the cache says they are filled.

Example::

    decoder = model.model.decoder
    kv = project_cross_kv(decoder, hidden)  # [batch, layers, 2, heads, frames, head_dim]
    cache = cross_kv_cache(list(kv), hidden.device, hidden.dtype)
    stand_in = placeholder_encoder_output(*hidden.shape, hidden.device, hidden.dtype)
    loss = model(encoder_outputs=(stand_in,), labels=labels, cache=cache).loss
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DynamicCache, EncoderDecoderCache

# peft ``exclude_modules``: the cross-attention key/value projections stay plain, frozen Linears
CROSS_KV_PATTERN = r".*encoder_attn\.(k_proj|v_proj)"


def cross_kv_projections(decoder: nn.Module) -> list[tuple[nn.Module, nn.Module]]:
    """``(k_proj, v_proj)`` of every decoder layer's cross-attention."""
    return [(layer.encoder_attn.k_proj, layer.encoder_attn.v_proj) for layer in decoder.layers]


def freeze_cross_kv(decoder: nn.Module) -> None:
    """Stop the cross-attention key/value projections from training."""
    for k_proj, v_proj in cross_kv_projections(decoder):
        k_proj.requires_grad_(False)
        v_proj.requires_grad_(False)


def cross_kv_cacheable(decoder: nn.Module) -> bool:
    """True when every cross-attention key/value projection is a plain Linear (no adapter) that
    does not train, so its output depends on the encoder output alone, and no decoder layer
    checkpoints its activations (transformers then drops the cache, and the layers would project
    the stand-in encoder output instead)."""
    if any(getattr(layer, "gradient_checkpointing", False) for layer in decoder.layers):
        return False
    return all(
        type(proj) is nn.Linear and not any(p.requires_grad for p in proj.parameters())
        for pair in cross_kv_projections(decoder)
        for proj in pair
    )


@torch.no_grad()
def project_cross_kv(decoder: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
    """Keys and values of every cross-attention layer for encoder output ``hidden`` [B, T, d]:
    a tensor [B, layers, 2, heads, T, head_dim], laid out as the attention layers use them."""
    batch, frames, _ = hidden.shape
    per_layer = []
    for layer in decoder.layers:
        attn = layer.encoder_attn
        shape = (batch, frames, attn.num_heads, attn.head_dim)
        k = attn.k_proj(hidden).view(shape).transpose(1, 2)
        v = attn.v_proj(hidden).view(shape).transpose(1, 2)
        per_layer.append(torch.stack([k, v], dim=1))  # [B, 2, H, T, hd]
    return torch.stack(per_layer, dim=1)


def cross_kv_cache(rows: list[torch.Tensor], device: torch.device, dtype: torch.dtype) -> EncoderDecoderCache:
    """An :class:`EncoderDecoderCache` with an empty self-attention part and the cross-attention
    part filled from per-clip rows of :func:`project_cross_kv` (each [layers, 2, H, T, hd])."""
    kv = torch.stack([r.to(device, dtype) for r in rows])  # [B, L, 2, H, T, hd]
    cross = DynamicCache()
    for layer in range(kv.shape[1]):
        cross.update(kv[:, layer, 0].contiguous(), kv[:, layer, 1].contiguous(), layer)
    return EncoderDecoderCache(DynamicCache(), cross)


def placeholder_encoder_output(batch: int, frames: int, d_model: int, device, dtype) -> torch.Tensor:
    """What the decoder is given as encoder output when every cross-attention layer reads the
    cache: only its presence and shape matter, so a broadcast zero (no memory) serves."""
    return torch.zeros(1, 1, d_model, device=device, dtype=dtype).expand(batch, frames, d_model)
