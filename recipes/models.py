"""``asr models``: list the registered models and their defaults."""

from __future__ import annotations

import argparse
import json

from asr.models.registry import MODELS
from asr.models.sources import models_dir


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps([s.as_dict() for s in MODELS.values()], ensure_ascii=False, indent=2))
        return 0
    local = models_dir()
    print(f"{'name':24} {'family':8} {'source':64} {'local copy'}")
    for spec in MODELS.values():
        source = spec.hub_id or ""
        if spec.modelscope_id:
            source += f" | ms:{spec.modelscope_id}" if source else f"ms:{spec.modelscope_id}"
        here = "yes" if (local / spec.name).is_dir() else "-"
        print(f"{spec.name:24} {spec.family:8} {source[:64]:64} {here}")
    print(f"\nlocal copies are looked up in {local} (ASR_MODELS_DIR); Hub mirrors via HF_ENDPOINT")
    return 0
