"""BENCHMARKS.md as a document: each benchmark owns one marked section and rewrites it in place.

A run saves its result as JSON (``runs/benchmarks/<section>.json``: the measurements plus the
command, date, commit and machine) and replaces the text between
``<!-- benchmark:<section> -->`` and ``<!-- /benchmark:<section> -->`` with what its ``render``
makes of that JSON; every other section is left as it is, and a section not yet in the file is
appended under its title. Only a clean checkout is stamped: with uncommitted changes (other
than BENCHMARKS.md itself) a run refuses to write before it measures, so every commit in the
file is one that can be checked out. ``--no-write`` prints the section only (stamped with the
commit 'plus uncommitted changes' where there are some) and saves nothing.

    python -m benchmarks.markdown runs/benchmarks/inference.json   # re-render a saved result
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import torch

from asr.errors import ASRError
from asr.io import read_json, write_json, write_text

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "BENCHMARKS.md"
RESULTS = REPO / "runs" / "benchmarks"
HEADER = "# Benchmarks\n"
# What a benchmark run itself changes; any other uncommitted change makes the tree dirty.
OWN_OUTPUT = "BENCHMARKS.md"

Render = Callable[[dict[str, Any]], str]


class DirtyTree(ASRError):
    """The checkout has uncommitted changes, so no commit describes the code measured."""


def begin_marker(section: str) -> str:
    return f"<!-- benchmark:{section} -->"


def end_marker(section: str) -> str:
    return f"<!-- /benchmark:{section} -->"


def replace_section(document: str, section: str, body: str, title: str) -> str:
    """``document`` with ``section``'s marked block holding ``body``; appended under ``## title`` if absent."""
    begin, end = begin_marker(section), end_marker(section)
    block = f"{begin}\n{body.strip()}\n{end}"
    count = document.count(begin)
    if count == 0:
        return (document.rstrip("\n") or HEADER.rstrip("\n")) + f"\n\n## {title}\n\n{block}\n"
    if count > 1:
        raise ValueError(f"{begin} appears {count} times")
    start = document.index(begin)
    stop = document.find(end, start)
    if stop < 0:
        raise ValueError(f"{begin} has no closing {end}")
    return document[:start] + block + document[stop + len(end) :]


def checkout_state(root: Path = REPO) -> tuple[str | None, list[str]]:
    """The checkout's short commit (None outside git) and its uncommitted changes other than BENCHMARKS.md."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=10", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain"],
            capture_output=True, text=True, timeout=30, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None, []
    changes = [line for line in status.splitlines() if line[3:].strip('"') != OWN_OUTPUT]
    return commit, changes


def clean_commit(root: Path = REPO) -> str:
    """The commit to stamp; :class:`DirtyTree` when there is none or the tree has uncommitted changes."""
    commit, changes = checkout_state(root)
    if commit is None:
        raise DirtyTree(f"{root} is not a git checkout: no commit to stamp (pass --no-write to print only)")
    if changes:
        shown = ", ".join(line.strip() for line in changes[:5]) + (" ..." if len(changes) > 5 else "")
        raise DirtyTree(
            f"uncommitted changes ({shown}): commit or stash them before a benchmark writes "
            f"{OWN_OUTPUT}, or pass --no-write to print only"
        )
    return commit


def machine() -> str:
    """CPU model, cores, memory, GPU if any, torch and Python versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (OSError, ValueError):
        memory = ""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}{gpu}, torch {torch.__version__}, "
        f"Python {platform.python_version()}"
    )


def command_line() -> str:
    """How this process was started, as ``python -m benchmarks.NAME ARGS`` (with ``ASR_MODELS_DIR`` if set)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    head = f"python -m {spec.name}" if spec else f"python {sys.argv[0]}"
    models = os.environ.get("ASR_MODELS_DIR")
    if models:
        path = Path(models)
        shown = path.relative_to(REPO) if path.is_absolute() and path.is_relative_to(REPO) else path
        head = f"ASR_MODELS_DIR={shown} {head}"
    return " ".join([head, *map(shlex.quote, sys.argv[1:])])


def table(columns: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table's lines."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _commit(text: str) -> str:
    """``abc`` as code, with a printed-only run's ' plus uncommitted changes' outside the backticks."""
    sha, _, rest = text.partition(" ")
    return f"`{sha}`" + (f" {rest}" if rest else "")


def stamp(provenance: dict[str, Any]) -> str:
    """The lines that open every generated section."""
    return (
        f"Command: `{provenance['command']}`\n\n"
        f"Measured on {provenance['date']} at commit {_commit(provenance['commit'])} on {provenance['machine']}."
    )


def render_record(record: dict[str, Any], render: Render) -> str:
    return stamp(record["provenance"]) + "\n\n" + render(record["result"]).strip() + "\n"


def write_section(path: Path, section: str, title: str, body: str) -> None:
    """Replace (or append) ``section`` of the Markdown file at ``path``."""
    document = path.read_text(encoding="utf-8") if path.exists() else HEADER
    write_text(path, replace_section(document, section, body, title))


def add_publish_arguments(parser: argparse.ArgumentParser, section: str) -> None:
    """``--no-write``, ``--section`` and ``--out-md``, shared by every benchmark."""
    parser.add_argument(
        "--no-write", action="store_true", help="print the section only (no JSON, no BENCHMARKS.md)"
    )
    parser.add_argument(
        "--section",
        default=section,
        help=f"the marked section of BENCHMARKS.md to rewrite, and the name of its JSON (default: {section})",
    )
    parser.add_argument(
        "--out-md", type=Path, default=BENCHMARKS, help="the Markdown file (default: BENCHMARKS.md)"
    )


def check_writable(args: argparse.Namespace) -> None:
    """Before measuring: refuse early (not after an hour of work) when the result could not be stamped."""
    if not args.no_write:
        clean_commit()


def publish(
    args: argparse.Namespace,
    module: str,
    title: str,
    result: dict[str, Any],
    render: Render,
    command: str | None = None,
) -> dict[str, Any]:
    """Print the section; unless ``--no-write``, save ``result`` as JSON and rewrite the section from it."""
    if args.no_write:  # printed only: say what the checkout is, clean or not
        commit, changes = checkout_state()
        commit = (commit or "none") + (" plus uncommitted changes" if changes else "")
    else:
        commit = clean_commit()
    provenance = {
        "command": command or command_line(),
        "date": date.today().isoformat(),
        "commit": commit,
        "machine": machine(),
    }
    if args.section != module.replace("_", "-"):  # a second section of the same script: its own heading
        title = f"{title} ({args.section})"
    record = {
        "module": module,
        "section": args.section,
        "title": title,
        "provenance": provenance,
        "result": result,
    }
    body = render_record(record, render)
    print(body)
    if not args.no_write:
        write_json(RESULTS / f"{args.section}.json", record)
        write_section(args.out_md, args.section, title, body)
        print(f"wrote {RESULTS / (args.section + '.json')} and section {args.section!r} of {args.out_md}")
    return record


def add_common_arguments(parser: argparse.ArgumentParser, phases: tuple[str, ...], section: str) -> None:
    """Flags every measuring benchmark shares, and the hidden ones of its child processes."""
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    add_publish_arguments(parser, section)
    parser.add_argument("--phase", choices=phases, default=None, help=argparse.SUPPRESS)


def rerender(path: Path, out_md: Path = BENCHMARKS) -> None:
    """Rewrite a section from its saved JSON (after a change to how a benchmark renders)."""
    record = read_json(path)
    render = importlib.import_module(f"benchmarks.{record['module']}").render
    write_section(out_md, record["section"], record["title"], render_record(record, render))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.markdown", description=rerender.__doc__)
    parser.add_argument("results", nargs="+", type=Path, help="runs/benchmarks/<section>.json files")
    parser.add_argument("--out-md", type=Path, default=BENCHMARKS)
    args = parser.parse_args(argv)
    for path in args.results:
        rerender(path, args.out_md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
