"""Read a CTranslate2 model (faster-whisper format) without ctranslate2: pure numpy.

``model.bin`` layout (binary versions 5 and 6, little endian): ``u32 version``, ``str spec_name``,
``u32 revision``, ``u32 n``, then n variables ``str name, u8 rank, u32 dims[rank], u8 dtype,
u32 nbytes, bytes``, then ``u32 n_aliases`` and pairs ``str alias, str target``; a ``str`` is
``u16 length (with NUL), utf-8 bytes, NUL``. Vocabulary and config sit next to it
(``vocabulary.json``/``.txt``, ``config.json``). A large model may come as ``model.bin.partN``.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import ASRError

_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")  # ctranslate2 type ids
_VERSIONS = (5, 6)
MODEL_PART = re.compile(r"^model\.bin\.part(\d+)$")


def model_parts(directory: Path) -> list[Path]:
    """``model.bin`` or its ``model.bin.partN`` pieces (N = 1..k, none missing)."""
    if (directory / "model.bin").is_file():
        return [directory / "model.bin"]
    parts = {int(m.group(1)): p for p in directory.iterdir() if (m := MODEL_PART.match(p.name))}
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
        files, directory = model_parts(path), path
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
