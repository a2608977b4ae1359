"""CTranslate2 copy of a merged export (``asr export --ct2``), loadable by ``faster_whisper.WhisperModel``.

The conversion belongs to the model family (``ASRModel.convert_ct2``; Whisper's copies
``tokenizer.json`` and ``preprocessor_config.json`` next to ``model.bin``, which
faster-whisper reads). CTranslate2 decodes at most 224 new tokens per 30 s window.

>>> export_ct2(Path("export"), Path("export/ct2"), "int8", family=ckpt.family)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from asr.errors import ASRError
from asr.export.errors import ExportError
from asr.models.registry import family_class

QUANTIZATIONS = ("int8", "float16", "float32")


def export_ct2(model_dir: Path, out_dir: Path, quantization: str = "float16", *, family: str) -> Path:
    """Convert the merged export ``model_dir`` of a ``family`` model into ``out_dir``."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    try:
        return family_class(family).convert_ct2(model_dir, out_dir, quantization)
    except ASRError as err:
        raise ExportError(str(err)) from err
