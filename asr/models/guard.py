"""Hallucination guard for autoregressive decoders (Whisper).

Two rules, both per hypothesis: (1) a length cap from the clip's duration
(``max_tokens_per_second * duration + min_new_tokens`` new tokens), and (2) a stop
when the generated tail repeats a pattern of period ``p`` at least ``repeat_limit``
times (twice that for ``p == 1``, so a genuine 哈哈哈 survives). After decoding,
:func:`cut_repetition` keeps one copy of such a tail.
"""

from __future__ import annotations

import math

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from asr.models.spec import DecodeOptions


def token_caps(durations: list[float], options: DecodeOptions) -> list[int]:
    """Maximum number of new tokens per clip."""
    return [math.ceil(d * options.max_tokens_per_second) + options.min_new_tokens for d in durations]


def _repeats_needed(period: int, repeat_limit: int) -> int:
    return 2 * repeat_limit if period == 1 else repeat_limit


def repeated_tail(tokens: list[int], repeat_limit: int, max_period: int) -> tuple[int, int] | None:
    """``(period, copies)`` of the longest degenerate repeating tail, or None."""
    n = len(tokens)
    for p in range(1, max_period + 1):
        need = _repeats_needed(p, repeat_limit)
        if n < p * need:
            continue
        pattern = tokens[n - p :]
        copies = 1
        while (copies + 1) * p <= n and tokens[n - (copies + 1) * p : n - copies * p] == pattern:
            copies += 1
        if copies >= need:
            return p, copies
    return None


def cut_repetition(tokens: list[int], repeat_limit: int, max_period: int) -> list[int]:
    """Drop all but one copy of a degenerate repeating tail."""
    found = repeated_tail(tokens, repeat_limit, max_period)
    if not found:
        return tokens
    period, copies = found
    return tokens[: len(tokens) - (copies - 1) * period]


class GuardLogitsProcessor(LogitsProcessor):
    """Forces end-of-text for rows past their token cap or stuck in a loop.

    ``caps`` holds one cap per input clip; rows are clip-major (beam search
    expands each clip into ``num_beams`` consecutive rows).
    """

    def __init__(self, caps: list[int], eos_token_id: int, options: DecodeOptions, num_beams: int = 1):
        self.caps = torch.tensor(caps).repeat_interleave(num_beams)
        self.eos = eos_token_id
        self.options = options
        self.prompt_len: int | None = None
        self.fired = {"length": 0, "repetition": 0}

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        generated = input_ids.shape[1] - self.prompt_len
        rows = input_ids[:, self.prompt_len :]
        # finished rows are padded with end-of-text; they need no guard and are not counted
        active = (
            rows[:, -1] != self.eos
            if generated
            else torch.ones(rows.shape[0], dtype=torch.bool, device=rows.device)
        )
        stop = (self.caps.to(input_ids.device) <= generated)[: input_ids.shape[0]] & active
        self.fired["length"] += int(stop.sum())
        rep = self._repetition(rows) & active
        self.fired["repetition"] += int((rep & ~stop).sum())
        stop = stop | rep
        if stop.any():
            scores[stop] = -math.inf
            scores[stop, self.eos] = 0.0
        return scores

    def _repetition(self, rows: torch.Tensor) -> torch.Tensor:
        found = torch.zeros(rows.shape[0], dtype=torch.bool, device=rows.device)
        n = rows.shape[1]
        for p in range(1, self.options.repeat_max_period + 1):
            need = _repeats_needed(p, self.options.repeat_limit)
            if n < p * need:
                break
            tail = rows[:, n - p * need :].reshape(rows.shape[0], need, p)
            found |= (tail == tail[:, -1:, :]).all(dim=2).all(dim=1)
        return found


def guard_tokens(tokens: list[int], cap: int, options: DecodeOptions) -> list[int]:
    """Apply the guard after the fact to a greedy hypothesis (engines without logits hooks).

    Truncating where :class:`GuardLogitsProcessor` would have forced end-of-text gives
    the same tokens as guarded greedy decoding, because greedy never looks ahead.
    """
    tokens = tokens[:cap]
    for end in range(1, len(tokens) + 1):
        if repeated_tail(tokens[:end], options.repeat_limit, options.repeat_max_period):
            tokens = tokens[:end]
            break
    return cut_repetition(tokens, options.repeat_limit, options.repeat_max_period)


def generation_guard(
    durations: list[float], options: DecodeOptions, stop_id: int, max_new_tokens: int
) -> tuple[LogitsProcessorList, int]:
    """The logits processors and ``max_new_tokens`` of one ``generate`` call: with the guard on,
    :class:`GuardLogitsProcessor` (stopping on ``stop_id``) and the largest of the clips' caps;
    without it, no processor and ``max_new_tokens``."""
    processors = LogitsProcessorList()
    if not options.guard:
        return processors, max_new_tokens
    caps = token_caps(durations, options)
    processors.append(GuardLogitsProcessor(caps, stop_id, options, options.beam_size))
    return processors, max(caps)
