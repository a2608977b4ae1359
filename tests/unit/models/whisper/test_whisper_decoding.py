"""Whisper decoding: the hallucination guard (live and post hoc) and the audio context."""

from __future__ import annotations

import math

import torch

from asr.models.guard import GuardLogitsProcessor, cut_repetition, guard_tokens, repeated_tail, token_caps
from asr.models.spec import DecodeOptions

OPTS = DecodeOptions()
EOS = 99


def test_repeated_tail_needs_enough_copies() -> None:
    assert repeated_tail([5, 1, 2, 1, 2, 1, 2, 1, 2], 4, 16) == (2, 4)
    assert repeated_tail([5, 1, 2, 1, 2, 1, 2], 4, 16) is None  # three copies: legit (非常非常非常)
    assert repeated_tail([7] * 7, 4, 16) is None  # period 1 needs twice the copies
    assert repeated_tail([7] * 8, 4, 16) == (1, 8)


def test_cut_repetition_keeps_one_copy() -> None:
    assert cut_repetition([5, 1, 2, 1, 2, 1, 2, 1, 2], 4, 16) == [5, 1, 2]
    assert cut_repetition([1, 2, 3], 4, 16) == [1, 2, 3]


def test_token_caps_follow_duration() -> None:
    assert token_caps([0.0, 1.0, 2.5], OPTS) == [12, 24, 42]


def _greedy(step_tokens: list[int], processor: GuardLogitsProcessor, prompt: list[int]) -> list[int]:
    """Drive the processor like generate() would, with a scripted 'model' output per step."""
    seq = list(prompt)
    for tok in step_tokens:
        scores = torch.full((1, 100), -1.0)
        scores[0, tok] = 1.0
        scores = processor(torch.tensor([seq]), scores)
        nxt = int(scores.argmax())
        seq.append(nxt)
        if nxt == EOS:
            break
    out = seq[len(prompt) :]
    return out[:-1] if out and out[-1] == EOS else out


def test_processor_and_posthoc_guard_agree() -> None:
    looping = [3, 4] + [1, 2] * 30
    proc = GuardLogitsProcessor([200], EOS, OPTS)
    live = _greedy(looping, proc, prompt=[50, 51, 52, 53])
    assert proc.fired["repetition"] == 1
    assert cut_repetition(live, OPTS.repeat_limit, OPTS.repeat_max_period) == guard_tokens(looping, 200, OPTS)
    assert guard_tokens(looping, 200, OPTS) == [3, 4, 1, 2]


def test_processor_caps_each_row_separately() -> None:
    proc = GuardLogitsProcessor([2, 5], EOS, OPTS, num_beams=1)
    prompt = torch.tensor([[50], [50]])
    seq = prompt
    for _ in range(6):
        scores = torch.zeros(2, 100)
        scores[:, 7] = 1.0
        scores[:, 8] = 0.5
        scores = proc(seq, scores)
        nxt = scores.argmax(dim=1, keepdim=True)
        nxt[seq[:, -1:] == EOS] = EOS  # generate() pads finished rows with end-of-text
        seq = torch.cat([seq, nxt], dim=1)
    row0, row1 = seq[0, 1:].tolist(), seq[1, 1:].tolist()
    assert row0[:3] == [7, 7, EOS]
    assert row1[:6] == [7, 7, 7, 7, 7, EOS]
    assert proc.fired["length"] == 2
    assert not math.isinf(float(scores[0, EOS]))
