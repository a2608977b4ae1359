"""Packed decoding for stock Whisper: several short clips in one 30 s window.

Stock Whisper always encodes 30 s, so for 2-10 s clips most encoder work is padding.
:func:`transcribe_packed` packs a batch's clips into windows (see :mod:`asr.models.whisper.packing_plan`),
decodes each window once with timestamps through the same decoder, prompt and hallucination
guard as :meth:`WhisperASR.transcribe` (:mod:`asr.models.whisper.decoding`; the token cap summed
over the window's clips), and splits the text back per clip by the known clip spans. A window holding a single clip is decoded
the ordinary way. Measured in BENCHMARKS.md ("Packing short clips").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr.models.guard import cut_repetition, token_caps
from asr.models.spec import DecodeOptions
from asr.models.whisper.decoding import DecodeLimits
from asr.models.whisper.packing_plan import (
    SAMPLE_RATE,
    Window,
    pack,
    plan_windows,
    segments_from_tokens,
    split_segments,
)

if TYPE_CHECKING:
    from asr.models.whisper.model import WhisperASR

TIMESTAMP_TOKENS_PER_CLIP = 4  # allowance for <|t|> pairs on top of the clips' text caps


@dataclass(frozen=True)
class PackedTokens:
    """Ids the window decoder needs: where timestamps begin, and the specials to drop."""

    timestamp_begin: int
    special: frozenset[int]


def _token_ids(asr_model: WhisperASR) -> PackedTokens:
    tok = asr_model.processor.tokenizer
    return PackedTokens(tok.convert_tokens_to_ids("<|0.00|>"), frozenset(tok.all_special_ids))


def window_caps(windows: list[Window], options: DecodeOptions, cap: int) -> list[int]:
    """New-token cap per window: the guard's per-clip caps summed, plus timestamp tokens."""
    caps = []
    for w in windows:
        text = sum(token_caps(list(w.durations), options)) if options.guard else cap
        caps.append(min(cap, text + TIMESTAMP_TOKENS_PER_CLIP * len(w.indices)))
    return caps


def _split_window(
    asr_model: WhisperASR, seq: list[int], window: Window, ids: PackedTokens, options: DecodeOptions
) -> list[str]:
    tok = asr_model.processor.tokenizer

    def decode(tokens: list[int]) -> str:
        if options.guard:
            tokens = cut_repetition(tokens, options.repeat_limit, options.repeat_max_period)
        return tok.decode(tokens, skip_special_tokens=True)

    segments = segments_from_tokens(seq, ids.timestamp_begin, set(ids.special), decode, window.end)
    return split_segments(segments, window.spans)


def unpacked(options: DecodeOptions) -> DecodeOptions:
    """``options`` with packing off, should they carry a ``packing`` switch (no recursion via transcribe)."""
    return replace(options, packing=False) if getattr(options, "packing", False) else options


@torch.inference_mode()
def transcribe_packed(
    asr_model: WhisperASR,
    waves: list[np.ndarray],
    options: DecodeOptions,
    durations: list[float] | None = None,
    gap_s: float = 1.0,
    longest_first: bool = False,
) -> list[str]:
    """One text per clip, in input order; clips packed into 30 s windows ``gap_s`` apart.

    The plan uses the waveforms' own lengths (their true placement); ``durations`` set the
    guard's token caps, as in :meth:`WhisperASR.transcribe`.
    """
    durations = durations or [len(w) / SAMPLE_RATE for w in waves]
    windows = plan_windows([len(w) / SAMPLE_RATE for w in waves], gap_s, longest_first=longest_first)
    texts: list[str] = [""] * len(waves)
    singles = [w.indices[0] for w in windows if len(w.indices) == 1]
    if singles:
        alone = asr_model.transcribe(
            [waves[i] for i in singles], unpacked(options), [durations[i] for i in singles]
        )
        for i, text in zip(singles, alone, strict=True):
            texts[i] = text
    multi = [w for w in windows if len(w.indices) > 1]
    if not multi:
        return texts
    # the guard's caps come from the given durations, the placement from the waveforms
    capped = [Window(w.indices, w.starts, tuple(durations[i] for i in w.indices)) for w in multi]
    prompt = asr_model.decode_prompt(options)  # one context for all clips (inference groups by context)
    caps = window_caps(capped, options, asr_model.max_new_tokens(prompt))
    packed = [pack(waves, w) for w in multi]
    seqs = asr_model.decoder().generate(
        asr_model.decoder_features(packed),
        prompt,
        DecodeLimits.of(caps, options),
        timestamps=True,
    )
    ids = _token_ids(asr_model)
    for w, seq in zip(multi, seqs, strict=True):
        for i, text in zip(w.indices, _split_window(asr_model, seq, w, ids, options), strict=True):
            texts[i] = text
    return texts
