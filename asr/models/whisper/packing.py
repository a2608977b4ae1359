"""Packed decoding for stock Whisper: several short clips in one 30 s window.

Stock Whisper always encodes 30 s, so for 2-10 s clips most encoder work is padding.
:func:`transcribe_packed` packs a batch's clips into windows (see :mod:`asr.models.whisper.packing_plan`),
decodes each window once with timestamps through the same decoder, prompt and hallucination
guard as :meth:`WhisperASR.transcribe` (:mod:`asr.models.whisper.decoding`; the token cap summed
over the window's clips), and gives each timestamped segment to the clip whose known span it
falls in. A window whose timestamps do not fit the spans (a segment across a gap, a clip with
speech left without text, ...), or that drifted into romanized text in a CJK-script language,
is decoded unpacked instead, as is a window holding a single clip. Measured in BENCHMARKS.md ("Packing short clips").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from asr.data.windows import is_silent
from asr.models.guard import cut_repetition, token_caps
from asr.models.spec import DecodeOptions
from asr.models.whisper.decoding import DecodeLimits
from asr.models.whisper.packing_plan import (
    SAMPLE_RATE,
    Attribution,
    Window,
    attribute,
    pack,
    plan_windows,
    romanized,
)

if TYPE_CHECKING:
    from asr.models.whisper.model import WhisperASR

log = logging.getLogger(__name__)

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


@dataclass
class PackingStats:
    """Counts of packed decoding since the last reset: windows decoded packed, and those of them
    whose attribution failed and whose clips were decoded unpacked instead."""

    windows: int = 0
    fallback_windows: int = 0
    fallback_clips: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "packed_windows": self.windows,
            "packing_fallback_windows": self.fallback_windows,
            "packing_fallback_clips": self.fallback_clips,
        }


def _attribute_window(
    asr_model: WhisperASR,
    seq: list[int],
    window: Window,
    ids: PackedTokens,
    options: DecodeOptions,
    speech: list[bool],
) -> Attribution:
    tok = asr_model.processor.tokenizer

    def decode(tokens: list[int]) -> str:
        if options.guard:
            tokens = cut_repetition(tokens, options.repeat_limit, options.repeat_max_period)
        return tok.decode(tokens, skip_special_tokens=True)

    result = attribute(seq, ids.timestamp_begin, set(ids.special), decode, window, speech)
    off = romanized(result.texts, options.language) if result.failure is None else []
    if off:
        return Attribution.failed(len(result.texts), f"clip(s) {', '.join(map(str, off))} romanized")
    return result


@torch.inference_mode()
def transcribe_packed(
    asr_model: WhisperASR,
    waves: list[np.ndarray],
    options: DecodeOptions,
    durations: list[float] | None = None,
    gap_s: float = 1.0,
    longest_first: bool = False,
    stats: PackingStats | None = None,
) -> list[str]:
    """One text per clip, in input order; clips packed into 30 s windows ``gap_s`` apart.

    ``options`` are the unpacked ones (30 s context): single-clip windows, and every clip of a
    window whose attribution fails (:func:`~asr.models.whisper.packing_plan.attribute`), are
    decoded with them in one batch, so no clip comes back empty where unpacked decoding would
    give text. The plan uses the waveforms' own lengths (their true placement); ``durations``
    set the guard's token caps, as in :meth:`WhisperASR.transcribe`. ``stats`` counts windows.
    """
    durations = durations or [len(w) / SAMPLE_RATE for w in waves]
    windows = plan_windows([len(w) / SAMPLE_RATE for w in waves], gap_s, longest_first=longest_first)
    texts: list[str] = [""] * len(waves)
    alone = [w.indices[0] for w in windows if len(w.indices) == 1]
    multi = [w for w in windows if len(w.indices) > 1]
    if multi:
        # the guard's caps come from the given durations, the placement from the waveforms
        capped = [Window(w.indices, w.starts, tuple(durations[i] for i in w.indices)) for w in multi]
        prompt = asr_model.decode_prompt(options)  # one context for all clips (inference groups by context)
        caps = window_caps(capped, options, asr_model.max_new_tokens(prompt))
        seqs = asr_model.decoder().generate(
            asr_model.decoder_features([pack(waves, w) for w in multi]),
            prompt,
            DecodeLimits.of(caps, options),
            timestamps=True,
        )
        ids = _token_ids(asr_model)
        for w, seq in zip(multi, seqs, strict=True):
            speech = [not is_silent(waves[i]) for i in w.indices]
            result = _attribute_window(asr_model, seq, w, ids, options, speech)
            if stats is not None:
                stats.windows += 1
            if result.failure is not None:
                log.debug("packed window of clips %s decoded unpacked: %s", w.indices, result.failure)
                alone += w.indices
                if stats is not None:
                    stats.fallback_windows += 1
                    stats.fallback_clips += len(w.indices)
                continue
            for i, text in zip(w.indices, result.texts, strict=True):
                texts[i] = text
    if alone:
        decoded = asr_model.transcribe([waves[i] for i in alone], options, [durations[i] for i in alone])
        for i, text in zip(alone, decoded, strict=True):
            texts[i] = text
    return texts
