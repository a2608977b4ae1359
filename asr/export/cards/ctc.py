"""Card text for the CTC family (wav2vec2-style models in a transformers pipeline)."""

from __future__ import annotations

from asr.export.cards.blocks import pipeline_usage


def usage(model_id: str, ct2_quantization: str | None = None) -> list[str]:
    return [
        *pipeline_usage(model_id, 'print(asr("clip.wav")["text"])'),
        "Greedy CTC decoding over a character vocabulary; no language model.",
        "",
    ]


def limitations() -> list[str]:
    return []
