"""Corpus layout ``hf``: a Hugging Face dataset, read through ``datasets`` (the ``hf`` extra).

The dataset is a Hub name (``load_dataset``; ``HF_ENDPOINT`` and the saved login apply), a
local folder ``load_dataset`` understands (``audiofolder`` with ``metadata.csv``, parquet...)
or a ``save_to_disk`` folder (``load_from_disk``). Each row becomes a
:class:`~asr.data.records.Candidate`, checked like any other layout:

- ``id``: the ``id`` column when there is one, else the audio file's stem (``01_0001`` ->
  ``video_1_1``), else ``<split>-<row>``;
- audio: the Audio column is never decoded by ``datasets`` (``Audio(decode=False)``): embedded
  bytes are written once to ``audio_dir/hf/<id>-<sha1>.<suffix>``, local paths are used in
  place; :func:`~asr.data.validate.check_candidates` then converts to 16 kHz mono when needed
  (``audio_dir/converted``) and reports what it cannot decode;
- other string and number columns are kept as manifest extras.

Splits: ``split_map`` (ours=theirs, :func:`parse_split_map`) picks the dataset's splits; without
one, splits named train / validation (val, valid, dev) / test are kept, and a dataset with a
single split (an ``audiofolder`` without split folders, a saved ``Dataset``) is unsplit: it gets
the default split rule like any unsplit corpus.

>>> parse_split_map("train=train,validation=dev")
{'train': 'train', 'validation': 'dev'}
>>> choose_splits(["train", "dev", "test"], None)
[('train', 'train'), ('dev', 'validation'), ('test', 'test')]
>>> choose_splits(["train"], None)
[('train', None)]
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asr.data.ids import canonical_id
from asr.data.records import MISSING_AUDIO, Candidate, ReadResult
from asr.data.splits import SPLITS, split_name
from asr.data.validate import safe_stem
from asr.errors import ASRError, ConfigError, DataError
from asr.io import write_bytes

if TYPE_CHECKING:
    from datasets import Dataset

log = logging.getLogger(__name__)

SAVED_MARKERS = ("dataset_dict.json", "state.json")  # what save_to_disk writes at the top
_CORE = ("id", "audio", "duration", "text", "text_norm", "split")  # not kept as extras
_MAGIC = ((b"RIFF", ".wav"), (b"fLaC", ".flac"), (b"OggS", ".ogg"))


@dataclass(frozen=True)
class HFSource:
    """Where the dataset is and which columns and splits to read (``split_map``: ours -> theirs)."""

    name: str
    config: str | None = None
    audio_column: str = "audio"
    text_column: str = "text"
    split_map: dict[str, str] | None = None


def parse_split_map(value: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """``"train=train,validation=dev,test=test"`` (ours=theirs) -> a dict; ConfigError when malformed.

    >>> parse_split_map({"val": "dev"})
    {'validation': 'dev'}
    """
    if value is None:
        return None
    pairs = value.items() if isinstance(value, Mapping) else _pairs(value)
    result: dict[str, str] = {}
    for ours, theirs in pairs:
        try:
            key = split_name(ours)
        except DataError:
            raise ConfigError(f"--split-map: {ours!r} is not one of {', '.join(SPLITS)}") from None
        if key in result:
            raise ConfigError(f"--split-map names {key} twice")
        if not str(theirs).strip() or str(theirs).strip() in result.values():
            raise ConfigError(f"--split-map: dataset split {theirs!r} is empty or used twice")
        result[key] = str(theirs).strip()
    if not result:
        raise ConfigError("--split-map is empty; expected e.g. train=train,validation=dev,test=test")
    return result


def _pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        ours, sep, theirs = item.partition("=")
        if not sep:
            raise ConfigError(f"--split-map {text!r}: {item!r} is not OURS=THEIRS (e.g. validation=dev)")
        pairs.append((ours.strip(), theirs.strip()))
    return pairs


def choose_splits(available: list[str], split_map: dict[str, str] | None) -> list[tuple[str, str | None]]:
    """``(their split, our split or None)`` to read; None means unsplit (the split rule decides)."""
    if split_map is not None:
        unknown = [theirs for theirs in split_map.values() if theirs not in available]
        if unknown:
            raise ConfigError(
                f"--split-map: unknown split {', '.join(map(repr, unknown))}; the dataset has "
                f"{', '.join(available) or 'no named splits'}"
            )
        return [(theirs, ours) for ours, theirs in split_map.items()]
    if len(available) == 1:
        return [(available[0], None)]
    chosen, seen = [], {}
    for theirs in available:
        try:
            ours = split_name(theirs)
        except DataError:
            raise ConfigError(
                f"dataset split {theirs!r} is not train/validation/test (splits: {', '.join(available)}); "
                "pick the ones to use with --split-map, e.g. train=train,validation=dev,test=test"
            ) from None
        if ours in seen:
            raise ConfigError(
                f"dataset splits {seen[ours]!r} and {theirs!r} are both {ours}; use --split-map"
            )
        seen[ours] = theirs
        chosen.append((theirs, ours))
    return chosen


def read_hf_dataset(source: HFSource, audio_dir: Path) -> ReadResult:
    """Candidates (and suspects) of every chosen split of ``source``; bytes cached in ``audio_dir/hf``."""
    splits = load_splits(source)
    result = ReadResult("hf", sources=[_describe(source)])
    for theirs, ours in choose_splits(list(splits), source.split_map):
        _read_split(source, splits[theirs], theirs, ours, audio_dir, result)
    return result


def _describe(source: HFSource) -> str:
    config = f" (config {source.config})" if source.config else ""
    return f"hf:{source.name}{config}"


def load_splits(source: HFSource) -> dict[str, Dataset]:
    """The dataset's splits by name (a saved single ``Dataset`` is one split named ``train``)."""
    try:
        import datasets
    except ImportError:
        raise ASRError("--hf-dataset needs the hf extra: pip install 'cs-mage-asr[hf]'") from None
    path = Path(source.name).expanduser()
    saved = path.is_dir() and any((path / marker).is_file() for marker in SAVED_MARKERS)
    if saved and source.config:
        raise ConfigError(f"--config applies to load_dataset; {path} is a save_to_disk folder")
    try:
        with _audio_paths_without_torchcodec():
            if saved:
                loaded = datasets.load_from_disk(str(path))
            else:
                loaded = datasets.load_dataset(str(path) if path.exists() else source.name, source.config)
    except ASRError:
        raise
    except Exception as err:  # datasets raises many kinds (FileNotFound, ValueError, Hub errors...)
        where = "" if path.exists() else f"; not a local folder, so it was looked up on {_endpoint()}"
        raise DataError(f"--hf-dataset {source.name}: cannot load it{where} ({_reason(err)})") from None
    if isinstance(loaded, datasets.Dataset):
        return {"train": loaded}
    if not isinstance(loaded, datasets.DatasetDict):
        raise DataError(f"--hf-dataset {source.name}: loaded a {type(loaded).__name__}, not a dataset")
    return dict(loaded.items())


def _endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def _reason(err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    cause = err.__cause__ or err.__context__
    text = f"{type(err).__name__}: {first}" if first else type(err).__name__
    return f"{text} <- {_reason(cause)}" if cause is not None and cause is not err else text


@contextlib.contextmanager
def _audio_paths_without_torchcodec() -> Iterator[None]:
    """Let ``datasets`` store audio file paths and bytes without torchcodec.

    datasets 5 imports torchcodec in ``Audio.encode_example`` even to store a path (as the
    ``audiofolder`` builder does); we never decode through it, so while loading, paths and bytes
    are stored as they are and only arrays still go to the original (which needs torchcodec).
    """
    if importlib.util.find_spec("torchcodec") is not None:
        yield
        return
    from datasets.features.audio import Audio

    original = Audio.encode_example

    def encode_example(self: Audio, value: Any) -> dict[str, Any]:
        if isinstance(value, (str, os.PathLike)):
            return {"bytes": None, "path": os.fspath(value)}
        if isinstance(value, (bytes, bytearray)):
            return {"bytes": bytes(value), "path": None}
        stored = (
            isinstance(value, dict) and "array" not in value and not str(value.get("path")).endswith("pcm")
        )
        if stored and (value.get("bytes") is not None or value.get("path") is not None):
            return {"bytes": value.get("bytes"), "path": value.get("path")}
        return original(self, value)

    Audio.encode_example = encode_example  # type: ignore[method-assign]
    try:
        yield
    finally:
        Audio.encode_example = original  # type: ignore[method-assign]


def _read_split(
    source: HFSource, data: Dataset, theirs: str, ours: str | None, audio_dir: Path, result: ReadResult
) -> None:
    from datasets import Audio

    where = f"--hf-dataset {source.name} split {theirs}"
    _check_columns(data, source, where)
    used = (source.audio_column, source.text_column)
    extras = [name for name, kind in data.features.items() if _scalar(kind) and name not in (*used, *_CORE)]
    wanted = [*used, *extras, *(["id"] if "id" in data.features and "id" not in used else [])]
    try:
        data = data.select_columns(wanted).cast_column(source.audio_column, Audio(decode=False))
    except Exception as err:  # pyarrow / datasets errors on an unusual audio column
        raise DataError(f"{where}: cannot read column {source.audio_column!r} ({_reason(err)})") from None
    for index, row in enumerate(data):
        origin = f"{_describe(source)}[{theirs}][{index}]"
        audio = row[source.audio_column] or {}
        raw_id = _row_id(row, audio, theirs, index)
        utt_id, source_id = canonical_id(raw_id)
        path = _audio_file(audio, utt_id, audio_dir)
        if path is None:
            result.flag(
                utt_id, origin, MISSING_AUDIO, f"no bytes and no path in column {source.audio_column}"
            )
            continue
        text = row[source.text_column]
        extra = {name: row[name] for name in extras if row[name] is not None}
        result.candidates.append(
            Candidate(utt_id, source_id, path, "" if text is None else str(text), "hf", text_origin=origin,
                      split=ours, extra=extra)
        )  # fmt: skip


def _check_columns(data: Dataset, source: HFSource, where: str) -> None:
    """DataError unless the audio column is an Audio feature and the text column holds strings."""
    from datasets import Audio, Value

    columns = ", ".join(data.column_names)
    for flag, column in (("--audio-column", source.audio_column), ("--text-column", source.text_column)):
        if column not in data.features:
            raise DataError(f"{where}: no column {column!r} (columns: {columns}); name it with {flag}")
    audio = data.features[source.audio_column]
    if not isinstance(audio, Audio):
        raise DataError(
            f"{where}: column {source.audio_column!r} is {audio}, not Audio; pass --audio-column with "
            f"the Audio column (columns: {columns}) or cast it with datasets.Audio()"
        )
    text = data.features[source.text_column]
    if not (isinstance(text, Value) and text.dtype in ("string", "large_string")):
        raise DataError(f"{where}: column {source.text_column!r} is {text}, not text; pass --text-column")


def _scalar(feature: Any) -> bool:
    from datasets import Value

    return isinstance(feature, Value) and feature.dtype not in ("binary", "large_binary")


def _row_id(row: dict[str, Any], audio: dict[str, Any], split: str, index: int) -> str:
    if row.get("id") not in (None, ""):
        return str(row["id"])
    if audio.get("path"):
        return Path(str(audio["path"])).stem
    return f"{split}-{index:06d}"


def _audio_file(audio: dict[str, Any], utt_id: str, audio_dir: Path) -> Path | None:
    """The file holding the clip: embedded bytes written once to ``audio_dir/hf``, else the path."""
    data, path = audio.get("bytes"), audio.get("path")
    if data:
        digest = hashlib.sha1(data).hexdigest()[:12]
        target = audio_dir / "hf" / f"{safe_stem(utt_id)}-{digest}{_suffix(path, data)}"
        if not (target.is_file() and target.stat().st_size == len(data)):
            write_bytes(target, data)
        return target.resolve()
    return Path(str(path)).expanduser() if path else None


def _suffix(path: str | None, data: bytes) -> str:
    """The file suffix that tells the audio loader how to decode: the path's, else from the bytes."""
    suffix = Path(path).suffix.lower() if path else ""
    if suffix and suffix[1:].isalnum():
        return suffix
    return next((ext for magic, ext in _MAGIC if data.startswith(magic)), ".audio")  # .audio: PyAV sniffs
