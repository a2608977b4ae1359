"""Typed configs: a dataclass, a YAML file and ``key=value`` overrides (torchtune style).

Values are coerced to the field annotations (``int``, ``float``, ``bool``, ``str``,
``Literal``, ``X | None``, ``list[X]``, ``dict``, nested dataclasses); a ``float`` must be
finite (``nan`` and ``inf`` are errors). An unknown key is a
:class:`~asr.errors.ConfigError` that lists the valid keys and suggests the closest one; a
file that is not UTF-8 is one that names the file and the byte.
A nested dataclass field is a section, overridden as ``section.key=value`` (``lora.r=16``); a
``dict`` field is a free-form section whose owner checks its keys. A config file may extend
another with ``base: <file>`` (see :func:`read_config_file`).

>>> from dataclasses import dataclass, field
>>> @dataclass
... class Cfg:
...     lr: float = 1e-3
...     steps: list[int] = field(default_factory=list)
>>> cfg = load_config(Cfg, None, ["lr=2e-4", "steps=[1, 2]"])
>>> cfg.lr, cfg.steps
(0.0002, [1, 2])
>>> load_config(Cfg, None, ["lr=fast"])
Traceback (most recent call last):
...
asr.errors.ConfigError: lr: expected a number, got 'fast'
>>> load_config(Cfg, None, ["lr=nan"])
Traceback (most recent call last):
...
asr.errors.ConfigError: lr: expected a finite number, got 'nan'
>>> load_config(Cfg, None, ["lrate=1"])
Traceback (most recent call last):
...
asr.errors.ConfigError: override 'lrate=1': unknown key 'lrate'; did you mean 'lr'? valid keys: lr, steps
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from asr.errors import ConfigError
from asr.io import write_text

T = TypeVar("T")

_NULLS = {"null", "none", "~", ""}
BASE_KEY = "base"  # in a config file: the file it extends (see read_config_file)
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def unknown_key_error(where: str, key: str, valid: Sequence[str]) -> ConfigError:
    """``where: unknown key 'lerning_rate'; did you mean 'learning_rate'? valid keys: ...``.

    The error carries ``unknown_key`` and ``where`` for callers that know where a key moved.
    """
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    err = ConfigError(f"{where}: unknown key {key!r}{hint} valid keys: {', '.join(valid)}")
    err.unknown_key, err.where = key, where
    return err


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _union_args(tp: Any) -> tuple[Any, ...] | None:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return None


def _is_mapping_type(tp: Any) -> bool:
    return tp is dict or typing.get_origin(tp) in (dict, Mapping)


def _plain_type(tp: Any) -> Any:
    """``X | None`` -> ``X`` (only when exactly one non-None member)."""
    args = _union_args(tp)
    if args is None:
        return tp
    rest = [a for a in args if a is not type(None)]
    return rest[0] if len(rest) == 1 else tp


def _wants_string(tp: Any) -> bool:
    """True when an override value for this field should stay a raw string."""
    tp = _plain_type(tp)
    if tp in (str, Path):
        return True
    if typing.get_origin(tp) is Literal:
        return all(isinstance(v, str) for v in typing.get_args(tp))
    return False


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert ``value`` to the annotation ``tp``; ConfigError naming ``key`` when impossible."""
    if tp is Any:
        return value
    args = _union_args(tp)
    if args is not None:
        is_null = value is None or (isinstance(value, str) and value.strip().lower() in _NULLS)
        if is_null and type(None) in args:
            return None
        errors = []
        for member in args:
            if member is type(None):
                continue
            try:
                return coerce(value, member, key)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{key}: cannot use {value!r} ({'; '.join(errors)})"
        )
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices:
            return value
        if isinstance(value, str):
            close = difflib.get_close_matches(value, [str(c) for c in choices], n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        else:
            hint = ""
        raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(str, choices))}{hint}")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        (item_tp,) = typing.get_args(tp)[:1] or (Any,)
        if isinstance(value, str):
            text = value.strip()
            value = [] if not text else [v.strip() for v in text.strip("[]").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        items = [coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {coerce(k, key_tp, key): coerce(v, val_tp, f"{key}.{k}") for k, v in value.items()}
    if _is_dataclass_type(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping of {', '.join(_field_names(tp))}, got {value!r}")
        return from_dict(tp, value, where=key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if isinstance(value, int):
            return value
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
        if not number.is_integer():
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(number)
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(number):  # nan or inf: would pass every range check and train a NaN model
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if tp in (str, Path):
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return tp(value) if tp is Path else str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{key}: cannot convert {value!r} to {tp}")


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "config") -> T:
    """Build ``cls`` from a mapping; unknown or missing keys raise ConfigError."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of keys to values, got {type(data).__name__}")
    names = _field_names(cls)
    hints = _hints(cls)
    for key in data:
        if key not in names:
            raise unknown_key_error(where, str(key), names)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        label = f.name if where == "config" else f"{where}.{f.name}"
        if f.name in data:
            kwargs[f.name] = coerce(data[f.name], hints[f.name], label)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {f.name!r}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def parse_override(item: str, cls: type) -> tuple[list[str], Any]:
    """``"lora.r=16"`` -> ``(["lora", "r"], 16)``, checking the key path against ``cls``."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key=value (e.g. learning_rate=1e-4 or lora.r=16)")
    path = key.split(".")
    tp: Any = cls
    for depth, part in enumerate(path):
        owner = _plain_type(tp)
        if _is_mapping_type(owner):  # a free-form section (its owner checks the keys): any key
            tp = (typing.get_args(owner) or (Any, Any))[1]
            continue
        if not _is_dataclass_type(owner):
            parent = ".".join(path[:depth])
            raise ConfigError(f"override {item!r}: {parent!r} is not a section, it has no key {part!r}")
        names = _field_names(owner)
        if part not in names:
            where = f"override {item!r}" + (f" (section {'.'.join(path[:depth])})" if depth else "")
            raise unknown_key_error(where, part, names)
        tp = _hints(owner)[part]
    if _wants_string(tp):
        value: Any = None if raw.strip().lower() in _NULLS - {""} else raw
    else:
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
    return path, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str], cls: type) -> dict[str, Any]:
    """Merge ``key=value`` items into ``data`` (nested keys create sections as needed)."""
    for item in overrides:
        path, value = parse_override(item, cls)
        node = data
        for depth, part in enumerate(path[:-1], start=1):
            child = node.get(part)
            if not isinstance(child, dict):
                child = {} if child is None else _to_plain(child)
                if not isinstance(child, dict):
                    section = ".".join(path[:depth])
                    raise ConfigError(
                        f"override {item!r}: {section} is {node.get(part)!r} in the config, not a section; "
                        f"write it as a section ({section}: {{{path[depth]}: ...}}) or remove it"
                    )
                node[part] = child
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from ``path`` (an empty file is ``{}``)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror or err})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def as_overrides(data: Mapping[str, Any], prefix: str = "") -> list[str]:
    """A mapping as ``key=value`` override items, sections as dotted keys, in file order.

    >>> as_overrides({"lora": {"scope": "decoder"}, "num_epochs": 6, "spec_augment": None})
    ['lora.scope=decoder', 'num_epochs=6', 'spec_augment=null']
    """
    items = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            items += as_overrides(value, f"{prefix}{key}.")
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            items.append(f"{prefix}{key}={text}")
    return items


def read_config_file(path: str | Path, _included: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's mapping over its ``base:`` file (a path relative to it), recursively.

    The file's keys win; a section present in both merges key by key.
    """
    path = Path(path)
    data = read_yaml(path)
    base = data.pop(BASE_KEY, None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ConfigError(f"{path}: {BASE_KEY}: expected a file name, got {base!r}")
    base_path = path.parent / base
    if base_path.resolve() in (*_included, path.resolve()):
        raise ConfigError(f"{path}: {BASE_KEY}: {base} includes {path.name} again (a cycle)")
    return merge_sections(read_config_file(base_path, (*_included, path.resolve())), data)


def merge_sections(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``over``; a mapping in both is merged the same way.

    >>> merge_sections({"a": 1, "lora": {"r": 8, "alpha": 16}}, {"lora": {"r": 4}})
    {'a': 1, 'lora': {'r': 4, 'alpha': 16}}
    """
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        both = isinstance(old, Mapping) and isinstance(value, Mapping)
        merged[key] = merge_sections(old, value) if both else value
    return merged


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Defaults of ``cls``, then the YAML file (if any, over its ``base:``), then the overrides."""
    data = read_config_file(path) if path is not None else {}
    # Check the file's own keys first so the error names the file.
    where = str(path) if path is not None else "config"
    _check_keys(cls, data, where)
    apply_overrides(data, overrides, cls)
    return from_dict(cls, data, where="config")


def _check_keys(cls: type, data: Mapping[str, Any], where: str) -> None:
    names = _field_names(cls)
    hints = _hints(cls)
    for key, value in data.items():
        if key not in names:
            raise unknown_key_error(where, str(key), names)
        sub = _plain_type(hints[key])
        if _is_dataclass_type(sub) and isinstance(value, Mapping):
            _check_keys(sub, value, f"{where} (section {key})")


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def to_dict(obj: Any) -> dict[str, Any]:
    """A config as plain YAML/JSON-able data."""
    return _to_plain(obj)


def dump_yaml(obj: Any, path: str | Path, header: str | None = None) -> Path:
    """Write a config as YAML atomically (keys in field order), with optional ``# header`` lines."""
    text = yaml.safe_dump(to_dict(obj), sort_keys=False, allow_unicode=True, default_flow_style=None)
    if header:
        text = "".join(f"# {line}\n" for line in header.splitlines()) + text
    return write_text(path, text)


__all__ = [
    "BASE_KEY",
    "apply_overrides",
    "as_overrides",
    "coerce",
    "dump_yaml",
    "from_dict",
    "load_config",
    "merge_sections",
    "parse_override",
    "read_config_file",
    "read_yaml",
    "to_dict",
    "unknown_key_error",
]
