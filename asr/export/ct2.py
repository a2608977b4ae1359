"""CTranslate2 export of a merged Whisper folder, loadable by ``faster_whisper.WhisperModel``.

The tokenizer and feature-extractor files are copied next to ``model.bin``: faster-whisper
reads ``tokenizer.json`` (else it downloads openai's) and ``preprocessor_config.json`` (the
number of mel bins). CTranslate2 decodes at most 224 new tokens per 30 s window.

>>> export_ct2(Path("export"), Path("export/ct2"), quantization="int8")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from asr.export.errors import ExportError

log = logging.getLogger(__name__)

QUANTIZATIONS = ("int8", "float16", "float32")
COPY_FILES = ("tokenizer.json", "preprocessor_config.json")


def _model_type(model_dir: Path) -> str:
    config = model_dir / "config.json"
    if not config.is_file():
        return ""
    try:
        return str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
    except ValueError as err:
        raise ExportError(f"{config}: unreadable ({err})") from err


def export_ct2(model_dir: Path, out_dir: Path, quantization: str = "float16") -> Path:
    """Convert the transformers Whisper folder ``model_dir`` (merged weights) into ``out_dir``."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}")
    if _model_type(model_dir) != "whisper":
        raise ExportError(
            f"{model_dir}: CTranslate2 export supports Whisper only (faster-whisper); "
            "this model is not a transformers Whisper checkpoint"
        )
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as err:
        raise ExportError("--ct2 needs CTranslate2: pip install 'cs-mage-asr[ct2]'") from err
    missing = [name for name in COPY_FILES if not (model_dir / name).is_file()]
    if missing:
        raise ExportError(
            f"{model_dir}: {', '.join(missing)} missing; faster-whisper needs them next to model.bin"
        )
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("converting %s to CTranslate2 (%s)", model_dir, quantization)
    try:
        TransformersConverter(str(model_dir), copy_files=list(COPY_FILES)).convert(
            str(tmp), quantization=quantization, force=True
        )
    except (NotImplementedError, RuntimeError, ValueError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(f"CTranslate2 conversion of {model_dir} failed: {err}") from err
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir
