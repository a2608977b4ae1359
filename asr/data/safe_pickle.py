"""Load an untrusted pickle that may only hold plain containers and numpy arrays.

A pickle can call any importable function while loading. ``safe_load`` uses an
unpickler whose ``find_class`` resolves only an allow-list: numpy's array/dtype/scalar
reconstruction helpers, ``collections.OrderedDict``/``defaultdict`` and inert builtin
types. Everything else (``os.system``, pandas objects, custom classes) is refused
before it is imported or called.

>>> import os, pickle, tempfile
>>> path = Path(tempfile.mkdtemp()) / "CS-Mage_fulldata.pkl"
>>> _ = path.write_bytes(pickle.dumps({"id": ["video_1_1"], "raw_text": ["好咯"]}))
>>> safe_load(path)
{'id': ['video_1_1'], 'raw_text': ['好咯']}
>>> _ = path.write_bytes(pickle.dumps(os.system))
>>> safe_load(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
asr.errors.DataError: ...: refused to unpickle posix.system (only plain containers and numpy arrays are allowed)
"""

from __future__ import annotations

import _compat_pickle
import importlib
import pickle
from pathlib import Path
from typing import Any

from asr.errors import DataError

# Builtin types whose constructors only build values from the given data. bytes, bytearray
# and range are left out: ``bytes(10**12)`` or ``list(range(10**12))`` are tiny memory bombs.
_SAFE_BUILTINS = frozenset(
    {"set", "frozenset", "list", "dict", "tuple", "str", "int", "float", "complex", "bool", "slice"}
)

_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {("builtins", name) for name in _SAFE_BUILTINS}
    | {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        # Protocol 0-2 pickles store bytes (numpy's raw buffers included) as latin-1 text.
        ("_codecs", "encode"),
    }
)


def _canonical(module: str, name: str) -> tuple[str, str]:
    """Map Python 2 names and numpy 1.x module paths onto what we allow-list."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    if module == "numpy.core" or module.startswith("numpy.core."):
        module = "numpy._core" + module[len("numpy.core") :]
    return module, name


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only allow-listed globals (see module docstring)."""

    def __init__(self, file, source: str) -> None:
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        canonical = _canonical(module, name)
        if canonical not in _ALLOWED:
            raise DataError(
                f"{self._source}: refused to unpickle {module}.{name} "
                "(only plain containers and numpy arrays are allowed)"
            )
        target_module, target_name = canonical
        return getattr(importlib.import_module(target_module), target_name)


def safe_load(path: str | Path) -> Any:
    """Unpickle ``path`` with :class:`RestrictedUnpickler`; any failure is a DataError."""
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from err
    with handle:
        try:
            return RestrictedUnpickler(handle, str(path)).load()
        except DataError:
            raise
        except EOFError as err:
            raise DataError(f"{path}: truncated or corrupt pickle (unexpected end of file)") from err
        except Exception as err:
            raise DataError(f"{path}: truncated or corrupt pickle ({type(err).__name__}: {err})") from err
