"""``asr prepare``: read a corpus, check it, split it, write manifests and data reports.

Output under ``--out``::

    manifests/{train,validation,test,all}.jsonl
    reports/data_validation.json
    reports/suspects.csv
    audio/                      extracted / converted WAVs (cached between runs)

Example::

    asr prepare --data-root ~/data/CS-Mage --out prepared --split-files ~/data/CS-Mage/splits-v2
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr.data.formats import FORMATS, read_corpus
from asr.data.manifest import Utterance, write_manifest
from asr.data.records import MISSING_AUDIO, MISSING_FROM_SPLIT_FILES, Suspect
from asr.data.splits import PROTOCOLS, SPLITS, assign_splits, check_split_options, parse_ratios
from asr.data.validate import build_report, check_candidates, write_json, write_suspects_csv
from asr.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", type=Path, required=True, help="corpus folder or .jsonl file")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="split protocol (default v2; input manifests that carry a split keep it unless this is given)",
    )
    parser.add_argument(
        "--split-files",
        type=Path,
        default=None,
        help="folder with the published split files: v2 train.csv/validation.csv/test.csv, "
        "v1 train_text.txt/val_text.txt/test_text.txt",
    )
    parser.add_argument("--seed", type=int, default=42, help="seed of --protocol random (v2 always uses 42)")
    parser.add_argument("--ratios", default="8:1:1", help="train:validation:test for --protocol random")
    parser.add_argument(
        "--format", dest="format", choices=("auto", *FORMATS), default="auto", help="corpus layout"
    )


@dataclass
class PrepareResult:
    """What :func:`prepare` wrote."""

    splits: dict[str, list[Utterance]]
    suspects: list[Suspect]
    report: dict[str, Any]
    manifest_dir: Path
    report_path: Path
    suspects_path: Path


def prepare(
    data_root: Path,
    out: Path,
    *,
    protocol: str | None = None,
    split_files: Path | None = None,
    seed: int = 42,
    ratios: str = "8:1:1",
    fmt: str = "auto",
) -> PrepareResult:
    """Run the whole preparation; safe to re-run (extracted and converted audio is reused)."""
    data_root, out = Path(data_root).expanduser(), Path(out).expanduser()
    if data_root.exists() and data_root.resolve() == out.resolve():
        raise ConfigError("--out must differ from --data-root (prepare writes manifests into --out)")
    ratio_values = parse_ratios(ratios)
    check_split_options(protocol, split_files)
    audio_dir = out / "audio"

    read = read_corpus(data_root, audio_dir, fmt)
    log.info("%s: %d candidate utterances, %d problems while reading", read.format, len(read.candidates),
             len(read.suspects))  # fmt: skip
    checked = check_candidates(read.candidates, audio_dir)
    suspects = read.suspects + checked.suspects
    chosen = assign_splits(checked.utterances, protocol, split_files, seed, ratio_values)

    flagged = {s.id for s in suspects}
    for utt_id, file_name in chosen.listed_not_in_data.items():
        if utt_id not in flagged:
            detail = f"listed in {file_name} but not found in the data"
            suspects.append(Suspect(utt_id, str(Path(split_files or ".") / file_name), MISSING_AUDIO, detail))
    by_id = {u.id: u for u in checked.utterances}
    for utt_id in chosen.not_listed:
        detail = "not in any split file; left out of the manifests"
        suspects.append(Suspect(utt_id, by_id[utt_id].audio, MISSING_FROM_SPLIT_FILES, detail))

    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for utt in checked.utterances:
        if utt.id in chosen.assignment:
            utt.split = chosen.assignment[utt.id]
            splits[utt.split].append(utt)

    manifest_dir, report_dir = out / "manifests", out / "reports"
    for name, rows in splits.items():
        write_manifest(manifest_dir / f"{name}.jsonl", rows)
    write_manifest(manifest_dir / "all.jsonl", [u for u in checked.utterances if u.id in chosen.assignment])
    report = build_report(
        splits,
        suspects,
        data_root=data_root,
        layout=read.format,
        sources=read.sources,
        provenance=chosen.provenance,
        candidates=len(read.candidates),
        converted=checked.converted,
        listed_not_in_data=chosen.listed_not_in_data,
        not_listed=chosen.not_listed,
    )
    report_path = write_json(report_dir / "data_validation.json", report)
    suspects_path = write_suspects_csv(report_dir / "suspects.csv", suspects)
    counts = report["counts"]
    log.info(
        "wrote %s: train %d, validation %d, test %d (%.2f h); %d suspects in %s",
        manifest_dir, counts["train"], counts["validation"], counts["test"], report["hours"]["all"],
        len(suspects), suspects_path,
    )  # fmt: skip
    if not counts["all"]:
        raise DataError(f"{data_root}: no usable utterances; see {suspects_path} and {report_path}")
    return PrepareResult(splits, suspects, report, manifest_dir, report_path, suspects_path)


def run(args: argparse.Namespace) -> int:
    prepare(
        args.data_root,
        args.out,
        protocol=args.protocol,
        split_files=args.split_files,
        seed=args.seed,
        ratios=args.ratios,
        fmt=args.format,
    )
    return 0
