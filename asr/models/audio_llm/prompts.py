"""What differs between the speech-LLMs of the family: the prompt and the markers around the transcript.

Each transformers processor of these models renders its own chat template
(``apply_transcription_request``); this module picks the arguments each model takes and cleans
what it writes around the transcript.

>>> clean_text("qwen3_asr", "language Chinese<asr_text>长沙话")
'长沙话'
>>> language_name("zh"), language_name("Cantonese"), language_name(None)
('Chinese', 'Cantonese', None)
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from transformers.models.qwen3_asr.processing_qwen3_asr import LANGUAGE_CODE_TO_NAME

log = logging.getLogger(__name__)

QWEN3_ASR = "qwen3_asr"
GLM_ASR = "glmasr"
MODEL_TYPES = (QWEN3_ASR, GLM_ASR)

# Qwen3-ASR writes "language <Name><asr_text>" before the transcript when the language is not forced
ASR_TEXT_MARKER = "<asr_text>"


def language_name(language: str | None) -> str | None:
    """Qwen3-ASR's forced-language name for a code (``zh``) or name (``Chinese``); None: auto-detect."""
    if not language:
        return None
    names = {name.lower(): name for name in LANGUAGE_CODE_TO_NAME.values()}
    found = LANGUAGE_CODE_TO_NAME.get(language.lower()) or names.get(language.lower())
    if found is None:
        log.warning("Qwen3-ASR has no forced language %r; it detects the language itself", language)
    return found


def prompts(
    model_type: str, processor: Any, waves: list[np.ndarray], language: str | None, context: str | None
):
    """The generation prompt of each clip as text, audio placeholders not yet expanded.

    Qwen3-ASR: the context (hot words, names, a dialect hint) is its system prompt and the language
    is forced by prefilling ``language <Name><asr_text>``. GLM-ASR: its default transcription request
    (it takes neither a language nor a context).
    """
    if model_type == QWEN3_ASR:
        return processor.apply_transcription_request(
            audio=waves, language=language_name(language), prompt=context or None, tokenize=False
        )
    return processor.apply_transcription_request(audio=waves, tokenize=False)


def clean_text(model_type: str, text: str) -> str:
    """The transcript without the model's own markers (Qwen3-ASR's ``language X<asr_text>`` prefix).

    >>> clean_text("qwen3_asr", "language None<asr_text>")
    ''
    """
    if model_type == QWEN3_ASR:
        text = text.rpartition(ASR_TEXT_MARKER)[2]  # the transcript follows the last marker
    return text.strip()
