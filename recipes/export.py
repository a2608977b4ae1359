"""``asr export``: a checkpoint as a folder plain transformers loads, with a model card; optionally
pushed to the Hugging Face Hub and converted for faster-whisper.

asr export --checkpoint runs/whisper-base-lora/best --out runs/whisper-base-lora/export --merge-lora \
    --push-to-hub me/whisper-base-cs-mage --dry-run
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from asr.export.ct2 import QUANTIZATIONS
from asr.export.run import ExportOptions, export
from asr.hub import human_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder, e.g. RUN/best")
    parser.add_argument("--out", required=True, type=Path, help="export folder (replaces a previous export)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--merge-lora", action="store_true", help="merge a LoRA adapter into the weights (the default)"
    )
    mode.add_argument("--adapter-only", action="store_true", help="export the LoRA adapter alone (peft)")
    parser.add_argument(
        "--push-to-hub", metavar="USER/REPO", default=None, help="upload the folder (one commit)"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repository as private")
    parser.add_argument(
        "--ct2", action="store_true", help="also write a CTranslate2 copy to OUT/ct2 (Whisper)"
    )
    parser.add_argument(
        "--quantization", choices=QUANTIZATIONS, default="float16", help="CTranslate2 weights"
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be uploaded; upload nothing")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=None,
        help="run folder with metrics/summary/config (default: checkpoint's parent)",
    )


def command_line(args: argparse.Namespace) -> str:
    """The export command as the card records it (paths as given, never a token)."""
    parts = ["asr", "export", "--checkpoint", str(args.checkpoint), "--out", str(args.out)]
    parts += ["--adapter-only"] if args.adapter_only else ["--merge-lora"]
    if args.push_to_hub:
        parts += ["--push-to-hub", args.push_to_hub] + (["--private"] if args.private else [])
    if args.ct2:
        parts += ["--ct2", "--quantization", args.quantization]
    if args.run_dir:
        parts += ["--run-dir", str(args.run_dir)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    options = ExportOptions(
        checkpoint=args.checkpoint,
        out=args.out,
        mode="adapter" if args.adapter_only else "merged",
        run_dir=args.run_dir,
        push_to_hub=args.push_to_hub,
        private=args.private,
        ct2=args.ct2,
        quantization=args.quantization,
        dry_run=args.dry_run,
        command=command_line(args),
    )
    result = export(options)
    total = sum(f.size for f in result.files)
    print(f"exported {len(result.files)} files ({human_size(total)}) to {result.out}")
    if result.plan:
        print(result.plan)
    elif args.dry_run:
        print("dry run: no --push-to-hub given, nothing to upload")
    if result.commit_url:
        print(f"pushed to {result.commit_url}")
    return 0
