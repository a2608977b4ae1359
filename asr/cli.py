"""The `asr` command: parses arguments and hands them to a recipe.

Each recipe module in ``recipes/`` exposes ``add_arguments(parser)`` and
``run(args) -> int``; this file only knows their names.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType

from asr import __version__
from asr.disk import failed_write, free_space
from asr.errors import ASRError
from asr.log_setup import configure_logging
from asr.memory import limit_heap_fragmentation, pause_collection_for_startup, startup_done
from asr.output_lock import output_lock
from asr.timing import mark_command_start

COMMANDS: dict[str, tuple[str, str]] = {
    "prepare": ("recipes.prepare", "build manifests and data reports from a corpus"),
    "score": ("recipes.score", "score predictions (CER, S/D/I, SER, WER, CI)"),
    "models": ("recipes.models", "list the registered models"),
    "evaluate": ("recipes.evaluate", "transcribe a manifest and score it"),
    "zero-shot": ("recipes.zero_shot", "evaluate several models on one manifest"),
    "import-ct2": ("recipes.import_ct2", "convert a CTranslate2 Whisper model to transformers"),
    "finetune": ("recipes.finetune", "fine-tune a model from a YAML config"),
    "export": ("recipes.export", "export a checkpoint (safetensors, card, Hub, CTranslate2)"),
    "report": ("recipes.report", "leaderboard of finished runs: tables, plots, HTML error reports"),
    "benchmark": ("recipes.benchmark", "zero-shot all eight, fine-tune a subset, write the leaderboard"),
    "transcribe": ("recipes.transcribe", "transcribe whole videos and recordings to SRT/VTT/JSON/TXT"),
    "segment": ("recipes.segment", "cut recordings into CS-Mage clips with draft transcripts"),
    "serve": ("recipes.serve", "serve a model over HTTP: OpenAI-compatible transcriptions, batched"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"cs-mage-asr {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, add_help=False)  # recipe owns -h
        sp.set_defaults(_module=module)
    return parser


def run_recipe(
    module: ModuleType, argv: list[str], prog: str, verbose: bool = False, program: bool = False
) -> int:
    """Parse ``argv`` with the recipe's own arguments and run it; user errors exit 2, not a traceback.

    Every recipe has the same entry: ``add_arguments(parser)`` and ``run(args) -> int``. Run
    one directly with ``python -m recipes.NAME`` (its ``__main__`` block calls :func:`standalone`).
    ``program``: this command is the process (not a call from a running one), so its start-up
    objects are frozen (:func:`asr.memory.startup_done`).
    """
    parser = argparse.ArgumentParser(prog=prog, description=(module.__doc__ or "").strip().splitlines()[0])
    module.add_arguments(parser)  # may import the model families (their flags)
    args = parser.parse_args(argv)
    if program:
        startup_done()
    limit_heap_fragmentation()
    configure_logging(verbose)
    try:
        with ExitStack() as locks:
            for folder in _output_folders(args):
                locks.enter_context(output_lock(folder))
            return int(module.run(args) or 0)
    except ASRError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (
        Exception
    ) as err:  # a failed write (full disk, read-only): torch and safetensors raise their own types
        failed = failed_write(err)
        if failed is None:
            raise
        reason, path = failed
        where = path or _output_of(args) or "the output"
        print(
            f"error: {where}: {reason} ({free_space(where)}); what was written before is kept: "
            "fix it, then rerun (with --resume where the command has it)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted: partial results are kept; rerun with --resume", file=sys.stderr)
        return 130


def _output_folders(args: argparse.Namespace) -> list[Path]:
    """The output folders a command writes (``--out``; fine-tuning locks its own ``output_dir``)."""
    out = getattr(args, "out", None)
    return [Path(out)] if isinstance(out, (str, Path)) and out else []


def _output_of(args: argparse.Namespace) -> str | None:
    """The folder or file a command writes, for messages about a failed write without a path."""
    for name in ("out", "output_dir", "output"):
        value = getattr(args, name, None)
        if value:
            return str(value)
    return None


def standalone(module_name: str) -> int:
    """``python -m recipes.NAME ARGS``: the same entry as ``asr NAME ARGS``."""
    module = sys.modules[module_name]
    mark_command_start(program=True)
    return run_recipe(module, sys.argv[1:], prog=f"python -m {module.__spec__.name}", program=True)


def main(argv: list[str] | None = None) -> int:
    """``asr ARGS``; ``argv`` None: the process's own arguments, this command is the program."""
    program = argv is None
    mark_command_start(program)
    if program:
        pause_collection_for_startup()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Parse the command name first, then let its recipe add its own arguments.
    known, _ = parser.parse_known_args(argv)
    module = importlib.import_module(known._module)
    rest = argv[argv.index(known.command) + 1 :]
    return run_recipe(module, rest, prog=f"asr {known.command}", verbose=known.verbose, program=program)


if __name__ == "__main__":
    sys.exit(main())
