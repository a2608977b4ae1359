"""Markdown building blocks the family templates share."""

from __future__ import annotations


def python_block(*code: str) -> list[str]:
    """Markdown lines of a fenced Python block, then a blank line.

    >>> python_block("import asr")
    ['```python', 'import asr', '```', '']
    """
    return ["```python", *code, "```", ""]


def pipeline_usage(model_id: str, call: str) -> list[str]:
    """Load ``model_id`` in a transformers ASR pipeline, then ``call`` it."""
    return python_block(
        "from transformers import pipeline",
        "",
        f'asr = pipeline("automatic-speech-recognition", model="{model_id}")',
        call,
    )
