"""Install a CTranslate2 Whisper model (faster-whisper format) as a transformers checkpoint.

Pure numpy/torch: ctranslate2 itself is not needed. The parts: :mod:`.ct2_reader` parses
``model.bin``, :mod:`.ct2_source` finds or assembles the source directory,
:mod:`.ct2_mapping` maps the variables to transformers weights; :func:`import_ct2` here
writes the checkpoint (atomically, with a completion marker).

Weights are stored as float32 by default: float16 -> float32 is exact, and CPU
training/inference wants float32. Re-exporting with ctranslate2's
``TransformersConverter(...).convert(..., quantization="float16")`` reproduces the
source ``model.bin`` byte for byte (checked in ``tests/real/test_ct2_import.py``).

>>> from asr.models.whisper.ct2_source import resolve_ct2_source
>>> out = import_ct2(resolve_ct2_source("pypi:whisper-base"), Path("models/whisper-base"))  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np

from asr.errors import ASRError
from asr.io import process_alive
from asr.models.whisper import assets as whisper_assets
from asr.models.whisper import ct2_mapping, ct2_reader
from asr.models.whisper.assets import vocab_layout, whisper_generation_config, whisper_processor
from asr.models.whisper.ct2_mapping import ct2_whisper_to_hf
from asr.models.whisper.ct2_reader import read_ct2_model, read_vocabulary

log = logging.getLogger(__name__)

MARKER = "ct2_import.json"  # written last: its presence means the import is complete
_WHISPER_REVISION = 3


def is_complete_import(out: Path) -> bool:
    """True when ``out`` holds a finished import (marker written last, files present)."""
    marker = Path(out) / MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return False
    return all((Path(out) / name).is_file() for name in info.get("files", []))


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _check_replaceable(out: Path) -> None:
    """Refuse to overwrite anything but a missing/empty directory or an earlier import."""
    if out.exists() and not out.is_dir():
        raise ASRError(f"{out} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise ASRError(f"{out} is not empty and holds no {MARKER}; choose a new or empty output directory")


def _remove_dead_staging(out: Path) -> None:
    """Delete the staging folders (``.OUT.PID.partial``/``.old``) of imports killed before they finished."""
    for stale in out.parent.glob(f".{glob.escape(out.name)}.*"):
        pid, _, suffix = stale.name[len(out.name) + 2 :].partition(".")
        if (
            suffix in ("partial", "old")
            and pid.isdigit()
            and (int(pid) == os.getpid() or not process_alive(int(pid)))
        ):
            log.info("removing %s, left by an import that was killed", stale)
            shutil.rmtree(stale, ignore_errors=True)


def converter_id() -> str:
    """Hash of this converter's code and the transformers version (recorded in the marker)."""
    import transformers

    digest = hashlib.sha256(transformers.__version__.encode())
    for module in (__file__, ct2_reader.__file__, ct2_mapping.__file__, whisper_assets.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


# Older CTranslate2 converters (the Systran faster-whisper models) spell a few special tokens the
# way openai-whisper's tokenizer did before it renamed them; the ids and weights are the same.
OLD_TOKEN_SPELLINGS = {"<|nocaptions|>": "<|nospeech|>", "<|iw|>": "<|he|>"}


def same_token(theirs: str, ours: str) -> bool:
    """Whether a CT2 vocabulary entry is our tokenizer's token (allowing the old spellings).

    >>> same_token("<|nocaptions|>", "<|nospeech|>"), same_token("<|iw|>", "<|he|>"), same_token("a", "b")
    (True, True, False)
    """
    return theirs == ours or OLD_TOKEN_SPELLINGS.get(theirs) == ours


def import_ct2(src: Path, out: Path, keep_dtype: bool = False, source_label: str | None = None) -> Path:
    """Write a transformers Whisper checkpoint converted from the CTranslate2 model in ``src``.

    ``out`` gets ``model.safetensors``, ``config.json``, ``generation_config.json``,
    tokenizer and preprocessor files, and ``ct2_import.json`` (written last). The
    checkpoint is built in a sibling temporary directory and moved into place, so
    ``out`` never holds a half-written import; an earlier import in ``out`` is
    replaced, any other non-empty directory is refused.
    ``keep_dtype`` keeps the source dtype (e.g. float16) instead of float32;
    ``source_label`` (default: ``src``) is recorded as the source in the marker.
    """
    import torch
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    start = time.perf_counter()
    src, out = Path(src).expanduser(), Path(out).expanduser()
    _check_replaceable(out)
    src_dir = src if src.is_dir() else src.parent
    spec_name, variables, ct2_config = read_ct2_model(src)
    if spec_name != "WhisperSpec":
        raise ASRError(
            f"{src}: CTranslate2 spec is {spec_name}, not WhisperSpec; only Whisper models convert"
        )
    if ct2_config["spec_revision"] != _WHISPER_REVISION:
        raise ASRError(
            f"{src}: WhisperSpec revision {ct2_config['spec_revision']} (this converter reads revision {_WHISPER_REVISION})"
        )
    config_kwargs, state = ct2_whisper_to_hf(variables)
    dtypes = sorted({str(a.dtype) for a in state.values()})
    if len(dtypes) != 1 or dtypes[0] not in ("float16", "float32"):
        raise ASRError(f"{src}: expected float16 or float32 weights, found {dtypes}")
    source_dtype = dtypes[0]
    dtype = source_dtype if keep_dtype else "float32"

    multilingual, num_languages = vocab_layout(config_kwargs["vocab_size"])
    processor = whisper_processor(config_kwargs["num_mel_bins"], multilingual, num_languages)
    vocab = read_vocabulary(src_dir)
    if vocab is not None:
        ours = [t for t, _ in sorted(processor.tokenizer.get_vocab().items(), key=lambda kv: kv[1])]
        differ = [i for i, (a, b) in enumerate(zip(vocab, ours, strict=False)) if not same_token(a, b)]
        if len(vocab) != len(ours) or differ:
            where = (
                f" (first at id {differ[0]}: {vocab[differ[0]]!r}, expected {ours[differ[0]]!r})"
                if differ
                else ""
            )
            raise ASRError(f"{src_dir}: the model vocabulary does not match the Whisper tokenizer{where}")

    ids = processor.tokenizer.convert_tokens_to_ids
    config = WhisperConfig(
        **config_kwargs,
        activation_function="gelu",
        scale_embedding=False,
        pad_token_id=ids("<|endoftext|>"),
        bos_token_id=ids("<|endoftext|>"),
        eos_token_id=ids("<|endoftext|>"),
        decoder_start_token_id=ids("<|startoftranscript|>"),
        dtype=dtype,
    )
    alignment_heads = ct2_config.get("alignment_heads")
    generation = whisper_generation_config(config, alignment_heads=alignment_heads)
    for key, ct2_key in (
        ("suppress_tokens", "suppress_ids"),
        ("begin_suppress_tokens", "suppress_ids_begin"),
    ):
        if ct2_config.get(ct2_key) is not None:
            setattr(generation, key, [int(t) for t in ct2_config[ct2_key]])
    config.suppress_tokens = generation.suppress_tokens
    config.begin_suppress_tokens = generation.begin_suppress_tokens

    torch_dtype = getattr(torch, dtype)
    with torch.device("meta"):
        model = WhisperForConditionalGeneration(config)
    tensors = {k: torch.from_numpy(np.array(v, dtype=dtype)) for k, v in state.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False, assign=True)
    missing = [k for k in missing if not (config.tie_word_embeddings and k == "proj_out.weight")]
    if missing or unexpected:
        raise ASRError(
            f"{src}: weights do not fit WhisperForConditionalGeneration (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    left = [n for n, t in itertools.chain(model.named_parameters(), model.named_buffers()) if t.is_meta]
    if left:
        raise ASRError(f"{src}: no weights for {left[:3]}")
    model.to(torch_dtype)
    model.generation_config = generation

    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_staging(out)
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    old = out.parent / f".{out.name}.{os.getpid()}.old"
    tmp.mkdir()
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        mode = 0o666 & ~_umask()
        for name in files:
            (tmp / name).chmod(mode)  # transformers writes some files 0600
        info = {
            "source": source_label or str(src),
            "converter": converter_id(),
            "spec": spec_name,
            "revision": ct2_config["spec_revision"],
            "source_dtype": source_dtype,
            "dtype": dtype,
            "tied_embeddings": bool(config.tie_word_embeddings),
            "files": files,
        }
        (tmp / MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        if out.exists():
            _check_replaceable(out)
            os.replace(out, old)  # aside, not deleted in place: a kill mid-delete left an unmarked folder
        os.replace(tmp, out)
    finally:
        for leftover in (tmp, old):
            if leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    log.info("imported %s -> %s (%s, %.1f s)", src, out, dtype, time.perf_counter() - start)
    return out
