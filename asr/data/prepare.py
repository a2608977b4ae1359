"""Corpus preparation: read a corpus, check it, split it, write manifests and data reports.

One function per layout (:mod:`asr.data.formats`) and :func:`prepare`, which detects the
layout. Each writes, under ``output_dir``::

    manifests/{train,validation,test,all}.jsonl
    reports/data_validation.json
    reports/suspects.csv
    audio/                      extracted / converted WAVs (reused by later runs)

and returns a :class:`PrepareResult`. Problems with single files are reported in
``suspects.csv`` and those files left out; a corpus with no usable utterance is a
:class:`~asr.errors.DataError` (raised after the reports are written).

Checks on input, each a suspect (reported and left out) unless said otherwise: audio must
be decodable (the reason is given in words: empty file, damaged WAV header, text saved as
``.wav``...), its samples finite (no NaN or infinity: ``non_finite_audio``) and at least
:data:`~asr.data.validate.MIN_DURATION` (0.1 s) long (``too_short``). Text files
(transcripts, ``wav.scp``, split files, ``.jsonl``) are decoded as strict UTF-8: any other
encoding is an error naming the file, the byte and line, and the encoding it looks like
(GB18030, Big5); transcripts and ids that are not valid Unicode (lone surrogates, pkl bytes
that are not UTF-8) are ``invalid_text``. Zip members are extracted only when not already
there with the same size and CRC-32, never when encrypted or compressed with an unreadable
method, nor beyond :data:`~asr.data.csmage.MAX_MEMBER_BYTES` (64 MiB;
``$ASR_MAX_ZIP_MEMBER_BYTES``) each (``too_large``); an extracted file judged unusable is
deleted. ``output_dir`` is checked to be a writable folder before anything is read, and
nothing is written to it until the whole corpus has been read, checked and split: a failed
run leaves earlier manifests as they were (when nothing is usable, only the reports are
rewritten, to show why).

>>> import tempfile
>>> import numpy as np
>>> from asr.data.audio import write_wav
>>> corpus = Path(tempfile.mkdtemp())
>>> _ = write_wav(corpus / "u1.wav", np.zeros(16000, dtype=np.float32))
>>> _ = (corpus / "wav.scp").write_text("u1 u1.wav\\nu2 u2.wav\\n", encoding="utf-8")
>>> _ = (corpus / "text").write_text("u1 今天好热咯\\nu2 冇得事\\n", encoding="utf-8")
>>> result = prepare(corpus, corpus / "prepared", protocol="random")
>>> result.layout, result.counts
('kaldi', {'train': 1, 'validation': 0, 'test': 0, 'all': 1})
>>> result.manifests["train"].relative_to(corpus).as_posix()
'prepared/manifests/train.jsonl'
>>> [(s.id, s.problem) for s in result.suspects]
[('u2', 'missing_audio')]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from asr.data.formats import read_corpus, resolve_format
from asr.data.hf_datasets import HFSource, parse_split_map, read_hf_dataset
from asr.data.manifest import Utterance, write_manifest
from asr.data.records import MISSING_AUDIO, MISSING_FROM_SPLIT_FILES, ReadResult, Suspect
from asr.data.splits import SPLITS, SplitResult, assign_splits, check_split_options, parse_ratios
from asr.data.validate import build_report, check_candidates, printable, write_suspects_csv
from asr.errors import ASRError, ConfigError, DataError
from asr.io import check_output_dir, write_json

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
Ratios = str | Sequence[float]
Reader = Callable[[Path, Path], ReadResult]  # (data_root, audio_dir) -> candidates and suspects
DEFAULT_RATIOS = (8, 1, 1)


@dataclass
class PrepareResult:
    """What a ``prepare*`` call wrote: manifest paths per split (and ``all``), rows, reports."""

    layout: str
    manifests: dict[str, Path]
    splits: dict[str, list[Utterance]]
    suspects: list[Suspect]
    report: dict[str, Any]
    report_path: Path
    suspects_path: Path

    @property
    def counts(self) -> dict[str, int]:
        """Utterances per split and ``all``."""
        return dict(self.report["counts"])

    @property
    def manifest_dir(self) -> Path:
        """``output_dir/manifests``."""
        return self.manifests["all"].parent


class SplitOptions(TypedDict, total=False):
    """Keyword options of every ``prepare*`` function.

    ``protocol``: ``v2``, ``v1`` or ``random``; None (default) keeps the ``split`` of input
    manifests that carry one, and otherwise means ``v2``. ``split_files``: folder of the
    published split files (v2 CSVs, v1 lists); without it v2 is recomputed with a warning.
    ``seed`` and ``ratios`` (``"8:1:1"`` or ``(8, 1, 1)``, the default) drive ``random``.
    """

    protocol: str | None
    split_files: PathLike | None
    seed: int
    ratios: Ratios


def prepare(
    data_root: PathLike, output_dir: PathLike, *, layout: str = "auto", **options: Unpack[SplitOptions]
) -> PrepareResult:
    """Prepare the corpus at ``data_root`` in ``layout`` (``auto``: detected; see
    :data:`asr.data.formats.FORMATS`) with the matching ``prepare_*`` function."""
    data_root, output_dir, _ = _check_options(data_root, output_dir, options)
    return PREPARERS[resolve_format(data_root, layout)](data_root, output_dir, **options)


def prepare_csmage(
    corpus_dir: PathLike, output_dir: PathLike, **options: Unpack[SplitOptions]
) -> PrepareResult:
    """CS-Mage as distributed: ``audio_wav.zip`` (extracted into ``output_dir/audio``) or
    ``audio_wav/``, plus ``CS-Mage_fulldata.pkl``.

    >>> result = prepare_csmage("CS-Mage", "prepared", split_files="CS-Mage/splits-v2")  # doctest: +SKIP
    >>> result.counts  # doctest: +SKIP
    {'train': 760, 'validation': 160, 'test': 165, 'all': 1085}
    """
    return _prepare("csmage", corpus_dir, output_dir, options)


def prepare_videos(
    videos_dir: PathLike, output_dir: PathLike, **options: Unpack[SplitOptions]
) -> PrepareResult:
    """A folder of video clips with ``transcripts.txt`` or a CS-Mage pkl; their 16 kHz mono
    audio is extracted into ``output_dir/audio`` once."""
    return _prepare("video", videos_dir, output_dir, options)


def prepare_kaldi(
    kaldi_dir: PathLike, output_dir: PathLike, **options: Unpack[SplitOptions]
) -> PrepareResult:
    """A Kaldi data folder: ``wav.scp`` (plain paths) + ``text`` (+ ``utt2spk``)."""
    return _prepare("kaldi", kaldi_dir, output_dir, options)


def prepare_funasr_jsonl(
    jsonl: PathLike, output_dir: PathLike, **options: Unpack[SplitOptions]
) -> PrepareResult:
    """A FunASR ``.jsonl`` file (or a folder of them) with ``key``, ``source``, ``target``."""
    return _prepare("funasr", jsonl, output_dir, options)


def prepare_manifests(
    manifests: PathLike, output_dir: PathLike, **options: Unpack[SplitOptions]
) -> PrepareResult:
    """Our own manifests (a ``.jsonl`` file, or a folder such as an earlier ``output_dir``),
    checked again; they keep their ``split`` unless ``protocol`` is given."""
    return _prepare("manifest", manifests, output_dir, options)


def prepare_hf_dataset(
    dataset: PathLike,
    output_dir: PathLike,
    *,
    config: str | None = None,
    audio_column: str = "audio",
    text_column: str = "text",
    split_map: str | Mapping[str, str] | None = None,
    **options: Unpack[SplitOptions],
) -> PrepareResult:
    """A Hugging Face dataset: a Hub name (``datasets.load_dataset``, through ``HF_ENDPOINT`` and
    the saved login), a local folder ``load_dataset`` reads (``audiofolder``...) or a
    ``save_to_disk`` folder (:mod:`asr.data.hf_datasets`). ``split_map`` (``"train=train,
    validation=dev"``: ours=theirs) picks the dataset's splits; a dataset with one split and no
    map gets the default split rule, as an unsplit corpus does.

    >>> result = prepare_hf_dataset("me/changsha-clips", "prepared", split_map="validation=dev")  # doctest: +SKIP
    """
    source = HFSource(str(dataset), config, audio_column, text_column, parse_split_map(split_map))
    return _prepare(
        "hf", dataset, output_dir, options, reader=lambda _, audio: read_hf_dataset(source, audio)
    )


PREPARERS: dict[str, Callable[..., PrepareResult]] = {
    "csmage": prepare_csmage,
    "video": prepare_videos,
    "kaldi": prepare_kaldi,
    "funasr": prepare_funasr_jsonl,
    "manifest": prepare_manifests,
}


def _check_options(
    data_root: PathLike, output_dir: PathLike, options: SplitOptions
) -> tuple[Path, Path, tuple[float, float, float]]:
    """Paths and ratios, checked before the corpus is touched; ``output_dir`` is created and
    proved writable last (so bad options leave nothing behind)."""
    unknown = sorted(options.keys() - SplitOptions.__optional_keys__)
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}")
    data_root, output_dir = Path(data_root).expanduser(), Path(output_dir).expanduser()
    if data_root.exists() and data_root.resolve() == output_dir.resolve():
        raise ConfigError("--out must differ from --data-root (prepare writes manifests into --out)")
    ratio_values = parse_ratios(options.get("ratios", DEFAULT_RATIOS))
    check_split_options(options.get("protocol"), options.get("split_files"))
    check_output_dir(output_dir, "--out")
    return data_root, output_dir, ratio_values


def _prepare(
    layout: str,
    data_root: PathLike,
    output_dir: PathLike,
    options: SplitOptions,
    reader: Reader | None = None,
) -> PrepareResult:
    """Read (with ``reader``, else the reader of ``layout``), check, split and write: the body of
    every ``prepare_*`` function."""
    data_root, out, ratio_values = _check_options(data_root, output_dir, options)
    protocol, split_files = options.get("protocol"), options.get("split_files")
    split_dir = None if split_files is None else Path(split_files)
    audio_dir = out / "audio"
    read = reader(data_root, audio_dir) if reader else read_corpus(data_root, audio_dir, layout)
    log.info("%s: %d candidate utterances, %d problems while reading", read.format, len(read.candidates),
             len(read.suspects))  # fmt: skip
    checked = check_candidates(read.candidates, audio_dir)
    suspects = read.suspects + checked.suspects
    chosen = assign_splits(checked.utterances, protocol, split_dir, options.get("seed", 42), ratio_values)
    suspects += _split_suspects(chosen, checked.utterances, {s.id for s in suspects}, split_dir)

    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for utt in checked.utterances:
        if utt.id in chosen.assignment:
            utt.split = chosen.assignment[utt.id]
            splits[utt.split].append(utt)

    kept = [u for u in checked.utterances if u.id in chosen.assignment]
    report = build_report(
        splits,
        suspects,
        data_root=data_root if data_root.exists() else str(data_root),  # a Hub dataset name stays a name
        layout=read.format,
        sources=read.sources,
        provenance=chosen.provenance,
        candidates=len(read.candidates),
        converted=checked.converted,
        listed_not_in_data=chosen.listed_not_in_data,
        not_listed=chosen.not_listed,
    )
    # Everything is read, checked and split: only now is --out written. A run with nothing
    # usable writes its reports (to show why) and leaves earlier manifests as they are.
    manifest_dir, report_dir = out / "manifests", out / "reports"
    report_path, suspects_path = report_dir / "data_validation.json", report_dir / "suspects.csv"
    try:
        if not kept:
            _write_reports(report_path, suspects_path, report, suspects)
            kept_note = (
                f"; the manifests in {manifest_dir} were left as they were" if manifest_dir.is_dir() else ""
            )
            raise DataError(
                f"{data_root}: no usable utterances; see {suspects_path} and {report_path}{kept_note}"
            )
        manifests = {
            name: write_manifest(manifest_dir / f"{name}.jsonl", rows) for name, rows in splits.items()
        }
        manifests["all"] = write_manifest(manifest_dir / "all.jsonl", kept)
        _write_reports(report_path, suspects_path, report, suspects)
    except OSError as err:
        raise ASRError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return PrepareResult(read.format, manifests, splits, suspects, report, report_path, suspects_path)


def _write_reports(
    report_path: Path, suspects_path: Path, report: dict[str, Any], suspects: list[Suspect]
) -> None:
    write_json(report_path, _printable(report))
    write_suspects_csv(suspects_path, suspects)


def _printable(value: Any) -> Any:
    """``value`` with every string writable as UTF-8 (paths from the file system may hold surrogates)."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


def _split_suspects(
    chosen: SplitResult, utterances: Sequence[Utterance], flagged: set[str], split_dir: Path | None
) -> list[Suspect]:
    """Ids the split files list but the data lacks (unless already flagged), and the reverse."""
    found = []
    for utt_id, file_name in chosen.listed_not_in_data.items():
        if utt_id not in flagged:
            detail = f"listed in {file_name} but not found in the data"
            found.append(Suspect(utt_id, str((split_dir or Path(".")) / file_name), MISSING_AUDIO, detail))
    by_id = {u.id: u for u in utterances}
    for utt_id in chosen.not_listed:
        detail = "not in any split file; left out of the manifests"
        found.append(Suspect(utt_id, by_id[utt_id].audio, MISSING_FROM_SPLIT_FILES, detail))
    return found
