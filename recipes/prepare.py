"""``asr prepare``: read a corpus, check it, split it, write manifests and data reports.

The work is :func:`asr.data.prepare.prepare`; output under ``--out``::

    manifests/{train,validation,test,all}.jsonl
    reports/data_validation.json
    reports/suspects.csv
    audio/                      extracted / converted WAVs (cached between runs)

Examples::

    asr prepare --data-root ~/data/CS-Mage --out prepared --split-files ~/data/CS-Mage/splits-v2
    asr prepare --hf-dataset me/changsha-clips --split-map validation=dev --out prepared
    asr prepare --data-root prepared --out prepared-again --to-hf cs-mage-hf

``--hf-dataset`` reads a Hugging Face dataset (Hub name, local folder or ``save_to_disk``
folder; :mod:`asr.data.hf_datasets`); ``--to-hf DIR`` also writes the prepared corpus as a
``DatasetDict`` (:mod:`asr.data.hf_export`), ``--push-to-hub USER/NAME`` pushes it to a
private dataset repository.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.arguments import non_negative_int
from asr.data.formats import FORMATS
from asr.data.hf_export import (
    LICENSE_FLAG,
    check_hf_folder,
    looks_like_csmage,
    push_hf_dataset,
    write_hf_dataset,
)
from asr.data.prepare import PrepareResult, prepare, prepare_hf_dataset
from asr.data.splits import PROTOCOLS
from asr.errors import ConfigError
from asr.hub import validate_repo_id


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data-root", type=Path, help="corpus folder or .jsonl file")
    source.add_argument(
        "--hf-dataset",
        metavar="NAME_OR_DIR",
        help="a Hugging Face dataset: Hub name, local folder (audiofolder...) or save_to_disk folder",
    )
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
    parser.add_argument(
        "--seed", type=non_negative_int, default=42, help="seed of --protocol random (v2 always uses 42)"
    )
    parser.add_argument("--ratios", default="8:1:1", help="train:validation:test for --protocol random")
    parser.add_argument(
        "--format", dest="format", choices=("auto", *FORMATS), default="auto", help="corpus layout"
    )
    hf = parser.add_argument_group("Hugging Face datasets (the hf extra)")
    hf.add_argument("--config", default=None, help="--hf-dataset configuration name")
    hf.add_argument("--audio-column", default="audio", help="--hf-dataset Audio column (default audio)")
    hf.add_argument("--text-column", default="text", help="--hf-dataset transcript column (default text)")
    hf.add_argument(
        "--split-map",
        default=None,
        metavar="OURS=THEIRS,...",
        help="--hf-dataset splits to read, e.g. train=train,validation=dev,test=test (default: the "
        "splits named so; a single split is unsplit and gets --protocol)",
    )
    hf.add_argument(
        "--to-hf", type=Path, metavar="DIR", help="also write the prepared corpus as a DatasetDict"
    )
    hf.add_argument("--push-to-hub", metavar="USER/NAME", help="push --to-hf to a private Hub dataset repo")
    hf.add_argument(
        LICENSE_FLAG,
        dest="accept_license",
        action="store_true",
        help="confirm that pushed CS-Mage clips stay private and are used for non-commercial research only",
    )


def _prepare(args: argparse.Namespace) -> PrepareResult:
    options = {
        "protocol": args.protocol,
        "split_files": args.split_files,
        "seed": args.seed,
        "ratios": args.ratios,
    }
    if args.hf_dataset is None:
        hf_only = [
            flag for flag, used in (("--config", args.config), ("--split-map", args.split_map)) if used
        ]
        if hf_only:
            raise ConfigError(f"{', '.join(hf_only)} apply to --hf-dataset, not to --data-root")
        return prepare(args.data_root, args.out, layout=args.format, **options)
    if args.format != "auto":
        raise ConfigError("--format applies to --data-root, not to --hf-dataset")
    return prepare_hf_dataset(
        args.hf_dataset,
        args.out,
        config=args.config,
        audio_column=args.audio_column,
        text_column=args.text_column,
        split_map=args.split_map,
        **options,
    )


def run(args: argparse.Namespace) -> int:
    if args.push_to_hub and not args.to_hf:
        raise ConfigError("--push-to-hub pushes the --to-hf folder: give --to-hf DIR too")
    if args.push_to_hub:
        validate_repo_id(args.push_to_hub)
    if args.to_hf:
        check_hf_folder(args.to_hf)
        out, hf = Path(args.out).expanduser().resolve(), Path(args.to_hf).expanduser().resolve()
        if out == hf or out.is_relative_to(hf) or hf.is_relative_to(out):
            raise ConfigError(
                f"--out {args.out} and --to-hf {args.to_hf} overlap (writing the DatasetDict replaces its folder "
                "whole); give them separate folders"
            )
    result = _prepare(args)
    counts = result.counts
    print(
        f"wrote {result.manifest_dir}: train {counts['train']}, validation {counts['validation']}, "
        f"test {counts['test']} ({result.report['hours']['all']:.2f} h); "
        f"{len(result.suspects)} suspects in {result.suspects_path}"
    )
    if args.to_hf:
        print(f"wrote {write_hf_dataset(result.splits, args.to_hf)} (datasets.load_from_disk)")
    if args.push_to_hub:
        csmage = looks_like_csmage(u for part in result.splits.values() for u in part)
        url = push_hf_dataset(args.to_hf, args.push_to_hub, csmage=csmage, accept_license=args.accept_license)
        print(f"pushed {url}")
    return 0
