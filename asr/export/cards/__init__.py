"""Model-card text per family: the "How to use" lines and family-specific limitations.

Templates are chosen by the registry's family name, so model classes hold no Markdown; a
family without a template gets no usage lines and no extra limitations.
"""

from __future__ import annotations

from types import ModuleType

from asr.export.cards import audio_llm, ctc, fun_asr_nano, funasr, whisper
from asr.export.cards.blocks import python_block

__all__ = ["limitations", "python_block", "usage"]

TEMPLATES: dict[str, ModuleType] = {
    "whisper": whisper,
    "ctc": ctc,
    "funasr": funasr,
    "audio_llm": audio_llm,
    "fun_asr_nano": fun_asr_nano,
}


def usage(family: str, model_id: str, ct2_quantization: str | None = None) -> list[str]:
    """Markdown lines showing how to run an exported model of ``family``."""
    template = TEMPLATES.get(family)
    return template.usage(model_id, ct2_quantization) if template else []


def limitations(family: str) -> list[str]:
    """Family-specific bullet points for the card's limitations section."""
    template = TEMPLATES.get(family)
    return template.limitations() if template else []
