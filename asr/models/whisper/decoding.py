"""One Whisper decoding interface: ``generate(features, prompt, limits, timestamps) -> token ids``.

Plain decoding (:meth:`WhisperASR.transcribe`) and packed decoding
(:func:`asr.models.whisper.packing.transcribe_packed`) both go through a :class:`WhisperDecoder`:
:class:`TorchWhisperDecoder` here (transformers ``generate``) or
:class:`asr.models.whisper.ct2.CT2WhisperEngine` (CTranslate2, which also turns a missing CUDA 12
runtime into a clear error). Each applies the hallucination guard of :class:`DecodeLimits` its way
(a logits processor, or after the fact for greedy CTranslate2), so callers never branch on the backend.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from transformers import LogitsProcessorList
from transformers.modeling_outputs import BaseModelOutput

from asr.models.guard import GuardLogitsProcessor
from asr.models.spec import DecodeOptions
from asr.models.whisper.context import FULL_CONTEXT_FRAMES, encode


@dataclass(frozen=True)
class Prompt:
    """What precedes the text: language and task by name (transformers) and as token ids (CTranslate2).

    ``previous``: Whisper's previous-text prompt, ``<|startofprev|>`` and the context's tokens
    (``--context`` / a manifest's ``context``), empty without one; it biases decoding towards
    the words it holds and is never part of the result.
    """

    language: str | None
    task: str
    ids: tuple[int, ...]  # <|startoftranscript|>[<|language|>]<|task|>
    notimestamps: int  # the id of <|notimestamps|>
    previous: tuple[int, ...] = ()

    def tokens(self, timestamps: bool) -> list[int]:
        """All the decoder's input ids: the previous text, then the start-of-transcript ids,
        ending in ``<|notimestamps|>`` unless timestamps are wanted."""
        start = list(self.ids) if timestamps else [*self.ids, self.notimestamps]
        return [*self.previous, *start]

    def new_tokens(self, seq: list[int], timestamps: bool) -> list[int]:
        """``seq`` without a leading copy of the prompt: some transformers versions return the
        decoder's input ids (the previous text included) before the new ones."""
        for prefix in (self.tokens(timestamps), list(self.previous)):
            if prefix and seq[: len(prefix)] == prefix:
                return seq[len(prefix) :]
        return seq


@dataclass(frozen=True)
class DecodeLimits:
    """How each row decodes: its new-token cap, the beams, and the guard's repetition rule.

    ``guard``: the options whose ``repeat_limit``/``repeat_max_period`` stop a looping row
    (None: the guard is off, the caps are the model's limit only).
    """

    caps: list[int]
    beam_size: int = 1
    guard: DecodeOptions | None = None

    @classmethod
    def of(cls, caps: list[int], options: DecodeOptions) -> DecodeLimits:
        return cls(caps, options.beam_size, options if options.guard else None)


class WhisperDecoder(Protocol):
    """A Whisper decoding backend: the new token ids of each row of ``features`` (guard applied,
    counting new tokens only; the prompt's previous text left out)."""

    def generate(
        self, features: Any, prompt: Prompt, limits: DecodeLimits, timestamps: bool
    ) -> list[list[int]]:
        """``features``: log-mel of shape (batch, mels, frames), fewer than 3000 frames for a short context."""
        ...


class TorchWhisperDecoder:
    """transformers ``generate`` on a Whisper model (a peft wrapper too); ``base`` is the plain model."""

    def __init__(self, model: Any, base: Any) -> None:
        self.model = model
        self.base = base

    def generate(
        self, features: torch.Tensor, prompt: Prompt, limits: DecodeLimits, timestamps: bool
    ) -> list[list[int]]:
        kwargs: dict[str, Any] = {
            "task": prompt.task,
            "return_timestamps": timestamps,
            "num_beams": limits.beam_size,
        }
        if prompt.language:
            kwargs["language"] = prompt.language
        processors = LogitsProcessorList()
        if limits.guard is not None:
            eos = self.base.generation_config.eos_token_id
            processors.append(GuardLogitsProcessor(limits.caps, eos, limits.guard, limits.beam_size))
        if features.shape[-1] < FULL_CONTEXT_FRAMES:  # transformers' encoder takes 30 s only
            hidden = encode(self.base.model.encoder, features)
            kwargs["encoder_outputs"] = BaseModelOutput(last_hidden_state=hidden)
        else:
            kwargs["input_features"] = features
        if prompt.previous:
            kwargs["prompt_ids"] = torch.tensor(prompt.previous, device=self.base.device)
        out = self.model.generate(max_new_tokens=max(limits.caps), logits_processor=processors, **kwargs)
        seqs = out if isinstance(out, torch.Tensor) else out["sequences"]
        return [prompt.new_tokens(seq, timestamps) for seq in seqs.tolist()]
