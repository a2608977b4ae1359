"""Packed decoding for stock Whisper: several short clips in one 30 s window.

Stock Whisper always encodes 30 s, so for 2-10 s clips most encoder work is padding.
:func:`transcribe_packed` packs a batch's clips into windows (see :mod:`asr.models.whisper.packing_plan`),
decodes each window once with timestamps (same language/task prompt and hallucination guard
as :meth:`WhisperASR.transcribe`, the token cap summed over the window's clips), and splits
the text back per clip by the known clip spans. A window holding a single clip is decoded
the ordinary way. Measured in BENCHMARKS.md ("Packing short clips").
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from transformers import LogitsProcessorList

from asr.models.guard import GuardLogitsProcessor, cut_repetition, guard_tokens, token_caps
from asr.models.spec import DecodeOptions
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


def timestamp_prompt(asr_model: WhisperASR, options: DecodeOptions) -> list[int]:
    """:meth:`WhisperASR._prompt` without ``<|notimestamps|>``."""
    notimestamps = asr_model.processor.tokenizer.convert_tokens_to_ids("<|notimestamps|>")
    return [t for t in asr_model._prompt(options) if t != notimestamps]


def window_caps(windows: list[Window], options: DecodeOptions, cap: int) -> list[int]:
    """New-token cap per window: the guard's per-clip caps summed, plus timestamp tokens."""
    caps = []
    for w in windows:
        text = sum(token_caps(list(w.durations), options)) if options.guard else cap
        caps.append(min(cap, text + TIMESTAMP_TOKENS_PER_CLIP * len(w.indices)))
    return caps


def generate_kwargs(options: DecodeOptions, return_timestamps: bool) -> dict[str, Any]:
    """transformers ``generate()`` arguments for the options' language, task and beams
    (:meth:`WhisperASR.transcribe` builds the same without timestamps)."""
    kwargs: dict[str, Any] = {
        "task": options.task,
        "return_timestamps": return_timestamps,
        "num_beams": options.beam_size,
    }
    if options.language:
        kwargs["language"] = options.language
    return kwargs


def _generate_torch(
    asr_model: WhisperASR, packed: list[np.ndarray], options: DecodeOptions, caps: list[int]
) -> list[list[int]]:
    gen_kwargs = generate_kwargs(options, return_timestamps=True)
    processors = LogitsProcessorList()
    if options.guard:
        eos = asr_model._base().generation_config.eos_token_id
        processors.append(GuardLogitsProcessor(caps, eos, options, options.beam_size))
    out = asr_model.model.generate(
        input_features=asr_model.features(packed),
        max_new_tokens=max(caps),
        logits_processor=processors,
        **gen_kwargs,
    )
    seqs = out if isinstance(out, torch.Tensor) else out["sequences"]
    return seqs.tolist()


def _generate_ct2(
    asr_model: WhisperASR, packed: list[np.ndarray], options: DecodeOptions, caps: list[int]
) -> list[list[int]]:
    """CTranslate2 applies Whisper's timestamp rules when the prompt lacks ``<|notimestamps|>``."""
    import ctranslate2

    feats = asr_model.processor.feature_extractor(packed, sampling_rate=SAMPLE_RATE, return_tensors="np")
    prompt = timestamp_prompt(asr_model, options)
    results = asr_model._ct2.model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(feats.input_features, dtype=np.float32)),
        [prompt] * len(packed),
        beam_size=options.beam_size,
        max_length=len(prompt) + max(caps),
        suppress_blank=True,
        suppress_tokens=[-1],
    )
    seqs = [r.sequences_ids[0] for r in results]
    if options.guard:
        return [guard_tokens(s, c, options) for s, c in zip(seqs, caps, strict=True)]
    return seqs


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
    caps = window_caps(capped, options, asr_model.max_new_tokens())
    packed = [pack(waves, w) for w in multi]
    generate = _generate_ct2 if asr_model._ct2 is not None else _generate_torch
    ids = _token_ids(asr_model)
    for w, seq in zip(multi, generate(asr_model, packed, options, caps), strict=True):
        for i, text in zip(w.indices, _split_window(asr_model, seq, w, ids, options), strict=True):
            texts[i] = text
    return texts
