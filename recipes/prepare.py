"""``asr prepare``: read a corpus, check it, split it, write manifests and data reports.

The work is :func:`asr.data.prepare.prepare`; output under ``--out``::

    manifests/{train,validation,test,all}.jsonl
    reports/data_validation.json
    reports/suspects.csv
    audio/                      extracted / converted WAVs (cached between runs)

Example::

    asr prepare --data-root ~/data/CS-Mage --out prepared --split-files ~/data/CS-Mage/splits-v2
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.data.formats import FORMATS
from asr.data.prepare import prepare
from asr.data.splits import PROTOCOLS


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


def run(args: argparse.Namespace) -> int:
    result = prepare(
        args.data_root,
        args.out,
        layout=args.format,
        protocol=args.protocol,
        split_files=args.split_files,
        seed=args.seed,
        ratios=args.ratios,
    )
    counts = result.counts
    print(
        f"wrote {result.manifest_dir}: train {counts['train']}, validation {counts['validation']}, "
        f"test {counts['test']} ({result.report['hours']['all']:.2f} h); "
        f"{len(result.suspects)} suspects in {result.suspects_path}"
    )
    return 0
