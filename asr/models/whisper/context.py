"""Whisper's audio context: how many seconds of log-mel the encoder sees.

Stock Whisper always encodes 30 s; most CS-Mage clips last 2-10 s, so most of that work is
padding. ``audio_context`` is ``full`` (30 s), ``auto`` (the default) (the batch's longest clip plus a
margin, rounded up to a bucket, at least :data:`AUTO_FLOOR_S`), or a number of seconds,
which is ``auto`` with that floor. Buckets keep tensor shapes few (5 s steps), so kernels
and caches see repeated shapes.

transformers' encoder refuses anything but 3000 frames, so :func:`encode` runs the same
modules with the positional embeddings sliced to the input length (as openai-whisper and
CTranslate2 do). A checkpoint fine-tuned at a short context records it in its generation
config (:func:`saved_context`), and decoding then uses it by default.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from asr.errors import ConfigError

FULL_CONTEXT_FRAMES = 3000  # 30 s of 10 ms log-mel frames
FRAMES_PER_SECOND = 100
AUTO_FLOOR_S = 10.0  # chosen by measurement, see BENCHMARKS.md ("Short audio context")
MARGIN_S = 1.0
BUCKET_S = 5.0
GENERATION_KEY = "audio_context"  # where a fine-tuned checkpoint records its context
# Decoding default for checkpoints that record none (stock Whisper). Measured on stock whisper-base,
# 120 demo clips (BENCHMARKS.md, "Inference"): auto is 3.3x (torch) / 5.2x (ct2) faster than 30 s
# at lower CER (0.909 vs 0.959 torch); with a 5 s floor CER equals 30 s's, hence the 10 s floor.
STOCK_CONTEXT = "auto"


def parse_audio_context(value: Any) -> str:
    """Normalise ``full`` | ``auto`` | seconds to its canonical string.

    >>> parse_audio_context("AUTO"), parse_audio_context(8), parse_audio_context("12.5")
    ('auto', '8', '12.5')
    >>> parse_audio_context("short")
    Traceback (most recent call last):
    asr.errors.ConfigError: audio_context must be full, auto or seconds (1-30), not 'short'
    """
    text = str(value).strip().lower()
    if text in ("full", "auto"):
        return text
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 1.0 <= seconds <= 30.0:
        raise ConfigError(f"audio_context must be full, auto or seconds (1-30), not {value!r}")
    return f"{seconds:g}"


def audio_context_frames(durations: Sequence[float], audio_context: str) -> int:
    """Log-mel frames the encoder sees for a batch of clips of these durations.

    >>> audio_context_frames([2.0, 3.2], "full")
    3000
    >>> audio_context_frames([2.0, 3.2], "auto"), audio_context_frames([9.5], "auto")
    (1000, 1500)
    >>> audio_context_frames([2.0], "5"), audio_context_frames([45.0], "auto")
    (500, 3000)
    """
    context = parse_audio_context(audio_context)
    if context == "full":
        return FULL_CONTEXT_FRAMES
    floor = AUTO_FLOOR_S if context == "auto" else float(context)
    need = max(float(d) + MARGIN_S for d in durations)
    seconds = floor if need <= floor else math.ceil(need / BUCKET_S - 1e-9) * BUCKET_S
    frames = math.ceil(seconds * FRAMES_PER_SECOND)
    return min(FULL_CONTEXT_FRAMES, frames + frames % 2)  # the stride-2 conv halves it


def encode(encoder: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """Whisper encoder output for ``features`` of any even length up to 3000 frames.

    At 3000 frames this is the transformers forward itself; shorter inputs run the same
    modules with the first ``frames / 2`` positional embeddings.
    """
    frames = features.shape[-1]
    if frames == FULL_CONTEXT_FRAMES:
        return encoder(features).last_hidden_state
    if frames > FULL_CONTEXT_FRAMES or frames % 2:
        raise ValueError(f"Whisper encoder input must be an even number of frames <= 3000, not {frames}")
    hidden = nn.functional.gelu(encoder.conv1(features))
    hidden = nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers:
        if encoder.training and encoder.layerdrop > 0.0 and float(torch.rand([])) < encoder.layerdrop:
            continue
        hidden = layer(hidden, None)
    return encoder.layer_norm(hidden)


def consistency_loss(
    encoder: nn.Module,
    short_hidden: torch.Tensor,
    full_features: torch.Tensor,
    teacher: contextlib.AbstractContextManager | None = None,
) -> torch.Tensor:
    """Mean squared distance between short-context encoder states and full-context ones
    (computed without gradient, in eval mode) over the frames both contexts see.

    ``teacher``: a context in which ``encoder`` is the original model (peft's
    ``disable_adapter()`` for LoRA), so the target stays fixed. Without one the target is the
    encoder being trained, which can drift together with the short states (measured on the demo
    corpus: such a run lost 30 s decoding; BENCHMARKS.md, "Fine-tuning at short context").
    """
    target = teacher_states(encoder, full_features, short_hidden.shape[1], teacher)
    return nn.functional.mse_loss(short_hidden.float(), target.float())


def teacher_states(
    encoder: nn.Module,
    full_features: torch.Tensor,
    frames: int,
    teacher: contextlib.AbstractContextManager | None = None,
) -> torch.Tensor:
    """The consistency target: ``encoder``'s first ``frames`` output frames at 30 s, computed
    without gradient in eval mode (inside ``teacher``, see :func:`consistency_loss`)."""
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.no_grad(), teacher or contextlib.nullcontext():
            return encoder(full_features).last_hidden_state[:, :frames]
    finally:
        encoder.train(was_training)


def saved_context(generation_config: Any) -> str:
    """The context a checkpoint was fine-tuned for, else :data:`STOCK_CONTEXT`."""
    value = getattr(generation_config, GENERATION_KEY, None)
    return parse_audio_context(value) if value else STOCK_CONTEXT
