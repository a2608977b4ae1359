"""``make gpu-check``: the GPU paths of fine-tuning and evaluation in one bounded run, no downloads.

    python3 -m tools.gpu_check --out runs/gpu-check               # one GPU, --budget-s 420
    python3 -m tools.gpu_check --device cpu --smoke --out DIR     # the same sections, tiny (CI)

Made for a bare offline GPU host: this module imports only the standard library, so it starts
with the host's own Python, torch, transformers, peft and accelerate plus the wheelhouse of
``make gpu-wheelhouse`` (``tools/gpu_wheelhouse.py``) on ``PYTHONPATH``. Each section runs as
``python -m tools.gpu_sections NAME`` in its own process group, so every import happens inside
its section: a missing package is that section's ``skipped`` (with the package named), a hang is
killed with its whole process group when the section's timeout or the global ``--budget-s`` runs
out, and the other sections still run.

As each section finishes one line is printed and ``OUT/gpu_check.json`` is rewritten; the logs
are in ``OUT/logs/``; replicas, clips and runs are in a scratch folder outside ``OUT`` (removed
unless ``--keep``). The last line is the verdict (``gpu-check: 9/11 sections ok, 2 skipped:
...``). The exit status is 1 when a section failed, timed out, did not fit the budget or was
skipped for a missing package (unless ``--allow-skip NAME``), 2 for bad options.

The sections and what they measure are listed in :mod:`tools.gpu_sections`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
JSON_NAME = "gpu_check.json"
# name -> (seconds allowed on a GPU at full size, in --smoke on 2 busy CPU cores), in the order they run
SECTIONS: dict[str, tuple[float, float]] = {
    "environment": (60, 120),
    "corpus": (120, 120),
    "whisper_small_lora_bf16": (150, 300),
    "whisper_small_lora_fp32": (150, 300),
    "whisper_small_full": (150, 300),
    "gpu_vs_cpu": (150, 300),
    "turbo_eval_torch": (150, 300),
    "turbo_eval_ct2": (150, 120),
    "paraformer_large_train": (120, 300),
    "sensevoice_small_train": (120, 300),
    "qwen3_asr_lora": (150, 300),
    "torchrun_nproc1": (180, 300),
    "deepspeed_zero2": (180, 120),
}
NEEDS_CORPUS = frozenset(SECTIONS) - {"environment", "corpus"}
# A section is not started with less than this left of the budget (it would only be killed).
MIN_SECTION_SECONDS = 5.0
# What the check reports the versions of (distribution names), beside the pins of pyproject.toml.
VERSIONED = (
    "torch", "transformers", "peft", "accelerate", "numpy", "tokenizers", "safetensors",
    "ctranslate2", "faster-whisper", "deepspeed", "funasr", "torchaudio", "soundfile", "soxr",
    "rapidfuzz", "jieba", "OpenCC", "nvidia-cublas-cu12", "nvidia-cudnn-cu12",
)  # fmt: skip


def pinned_versions(pyproject: Path = REPO / "pyproject.toml") -> dict[str, str]:
    """``name==version`` pins of pyproject.toml (core and extras), by lower-case name.

    A regular expression rather than ``tomllib``, which Python 3.10 lacks.
    """
    text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
    return {m[1].lower(): m[2] for m in re.finditer(r'"([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^";\s]+)', text)}


def installed_versions(names: tuple[str, ...] = VERSIONED) -> dict[str, str | None]:
    """The installed version of each distribution (``None``: absent), read without importing it."""
    found: dict[str, str | None] = {}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def differences_from_pins(found: dict[str, str | None], pins: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Each installed distribution whose version is not its pin: ``{name: {pinned, found}}``."""
    diffs = {}
    for name, version in found.items():
        pin = pins.get(name.lower())
        # a local build tag (2.14.1+cu130) is the pinned release
        if version is not None and pin is not None and version.split("+")[0] != pin:
            diffs[name] = {"pinned": pin, "found": version}
    return diffs


# --- running a section ----------------------------------------------------------------------------


def kill_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    """SIGTERM to the process group of ``proc`` (its leader's pid), then SIGKILL after ``grace`` s.

    Torchrun's workers run in sessions of their own; they die with the launcher (the section sets
    their parent-death signal, :func:`tools.gpu_sections.die_with_parent`).
    """
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        if sig == signal.SIGTERM:  # the leader is gone; what else of its group is left gets SIGKILL
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return


def run_section(
    name: str, args: argparse.Namespace, scratch: Path, log: Path, timeout: float
) -> dict[str, Any]:
    """``python -m tools.gpu_sections NAME`` in a process group of its own, at most ``timeout`` s."""
    result_path = scratch / "results" / f"{name}.json"
    result_path.parent.mkdir(parents=True, exist_ok=True)
    result_path.unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "tools.gpu_sections", name, "--scratch", str(scratch),
        "--result", str(result_path), "--device", args.device, *(["--smoke"] if args.smoke else []),
    ]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    start = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        kill_group(proc)  # also what a finished section left running
    seconds = round(time.perf_counter() - start, 1)
    if timed_out:
        result = {
            "status": "failed",
            "error": f"timed out after {timeout:.0f} s: its process group was killed",
            "timed_out": True,
        }
    elif result_path.is_file():
        result = json.loads(result_path.read_text(encoding="utf-8"))
    else:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        result = {"status": "failed", "error": f"exit status {proc.returncode} without a result: {tail}"}
    result["section_seconds"] = seconds
    result["log"] = str(log)
    return result


# --- report ---------------------------------------------------------------------------------------


def result_line(index: int, total: int, name: str, r: dict[str, Any]) -> str:
    """The line printed when section ``name`` finishes."""
    status = r.get("status", "?")
    parts = [f"gpu-check: [{index}/{total}] {name}: {status}"]
    if r.get("utterances_per_second") is not None:
        parts.append(f"{r['utterances_per_second']:.2f} utt/s")
    if r.get("share_of_paper") is not None:
        parts.append(f"{r['share_of_paper']:.0%} of the paper model")
    if r.get("peak_gpu_memory_mib") is not None:
        parts.append(f"peak {r['peak_gpu_memory_mib']:.0f} MiB")
    parts.append(f"{r.get('section_seconds', 0):.0f} s")
    why = r.get("reason") or (r.get("error") or "").strip().splitlines()[-1:] or [r.get("summary", "")]
    text = why if isinstance(why, str) else (why[0] if why else "")
    return ", ".join(parts) + (f" ({text[:160]})" if text else "")


# Sections measured against benchmarks.throughput_model: (model, lora | full | decode).
PAPER = {
    "whisper_small_lora_bf16": ("whisper-small", "lora"),
    "whisper_small_full": ("whisper-small", "full"),
    "turbo_eval_torch": ("whisper-large-v3-turbo", "decode"),
    "qwen3_asr_lora": ("qwen3-asr-0.6b", "lora"),
}


def against_paper(name: str, result: dict[str, Any], smoke: bool) -> None:
    """Add the paper model's utterances/s (40% of an H100's bf16 peak) and the measured share of it
    (full size only: the smoke replicas have one layer)."""
    from benchmarks.throughput_model import model_utt_per_s

    measured = result.get("utterances_per_second")
    if smoke or name not in PAPER or not measured:
        return
    paper = model_utt_per_s(*PAPER[name])
    result["paper_utterances_per_second"] = round(paper, 1)
    result["share_of_paper"] = round(measured / paper, 3)


def derived(report: dict[str, Any]) -> dict[str, Any]:
    """Results across sections: the bf16 over fp32 training speed-up."""
    sections = report["sections"]
    bf16 = sections.get("whisper_small_lora_bf16", {}).get("utterances_per_second")
    fp32 = sections.get("whisper_small_lora_fp32", {}).get("utterances_per_second")
    return {"bf16_speedup_whisper_small_lora": round(bf16 / fp32, 2) if bf16 and fp32 else None}


def is_blocking(name: str, r: dict[str, Any], allow: set[str]) -> bool:
    """Does this result make the exit status non-zero?"""
    if r["status"] == "failed":
        return True
    return r["status"] == "skipped" and r.get("blocking", False) and name not in allow


def verdict(report: dict[str, Any], allow: set[str]) -> tuple[str, bool]:
    """The last line (``gpu-check: 9/11 sections ok, 2 skipped: ...``) and whether the check passed."""
    run = {k: v for k, v in report["sections"].items() if v.get("status") != "not selected"}
    ok = [k for k, v in run.items() if v["status"] == "ok"]
    skipped = [f"{k} ({v.get('reason', '')[:80]})" for k, v in run.items() if v["status"] == "skipped"]
    failed = [k for k, v in run.items() if v["status"] == "failed"]
    line = f"gpu-check: {len(ok)}/{len(run)} sections ok"
    if failed:
        line += f", {len(failed)} failed: {', '.join(failed)}"
    if skipped:
        line += f", {len(skipped)} skipped: {'; '.join(skipped)}"
    blocking = [k for k, v in run.items() if is_blocking(k, v, allow)]
    return line, not blocking


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Rewritten after every section (atomically): a kill keeps what ran."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python3 -m tools.gpu_check", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/gpu-check"), help=f"folder for {JSON_NAME}")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny sizes (1-layer replicas, 8 clips): a CI check"
    )
    parser.add_argument("--sections", nargs="+", choices=tuple(SECTIONS), help="run only these")
    parser.add_argument("--budget-s", type=float, default=420.0, help="the whole check's time (default 420)")
    parser.add_argument(
        "--scratch", type=Path, help="replicas, clips and runs (default: a new temporary folder)"
    )
    parser.add_argument(
        "--section-timeout-s",
        nargs="+",
        default=[],
        metavar="[NAME=]S",
        help="S: every section's limit; NAME=S: that section's (default: each its own, 60-180 s)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument(
        "--allow-skip",
        nargs="+",
        default=[],
        metavar="NAME",
        help="sections whose skip for a missing package still passes",
    )
    return parser.parse_args(argv)


def section_timeout(name: str, args: argparse.Namespace) -> float:
    """``--section-timeout-s NAME=S``, else ``--section-timeout-s S``, else the section's own."""
    limits = dict(item.rpartition("=")[::2] for item in args.section_timeout_s)
    return float(limits.get(name) or limits.get("") or SECTIONS[name][1 if args.smoke else 0])


def check_args(args: argparse.Namespace) -> str | None:
    """The ``error:`` line for bad options, else ``None``."""
    if args.budget_s <= 0:
        return f"--budget-s must be positive, got {args.budget_s}"
    for item in args.section_timeout_s:
        name, _, value = item.rpartition("=")
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if seconds <= 0 or (name and name not in SECTIONS):
            return f"--section-timeout-s {item}: expected seconds > 0 or NAME=seconds with a known section"
    unknown = sorted(set(args.allow_skip) - set(SECTIONS))
    if unknown:
        return f"--allow-skip: no section {', '.join(unknown)} (known: {', '.join(SECTIONS)})"
    if args.scratch is not None:
        out, scratch = args.out.resolve(), args.scratch.resolve()
        if scratch == out or out in scratch.parents or scratch in out.parents:
            return f"--scratch {args.scratch}: must be outside --out {args.out} (and not contain it)"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    problem = check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    out = args.out
    (out / "logs").mkdir(parents=True, exist_ok=True)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    scratch.mkdir(parents=True, exist_ok=True)
    found = installed_versions()
    report: dict[str, Any] = {
        "schema": "gpu_check",
        "device": args.device,
        "smoke": bool(args.smoke),
        "budget_seconds": args.budget_s,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": found,
        "differs_from_pins": differences_from_pins(found, pinned_versions()),
        "scratch": str(scratch),
        "sections": {},
    }
    chosen = set(SECTIONS if args.sections is None else args.sections)
    if chosen & NEEDS_CORPUS:
        chosen.add("corpus")
    selected = [n for n in SECTIONS if n in chosen]
    started = time.monotonic()
    for index, name in enumerate(selected, 1):
        left = deadline - time.monotonic()
        corpus = report["sections"].get("corpus", {})
        if left < MIN_SECTION_SECONDS:
            result = {"status": "failed", "error": f"not run: the budget of {args.budget_s:.0f} s was spent"}
        elif name in NEEDS_CORPUS and corpus.get("status") != "ok":
            result = {"status": "skipped", "reason": "needs the synthetic corpus, which was not written"}
        else:
            timeout = min(section_timeout(name, args), left)
            result = run_section(name, args, scratch, out / "logs" / f"{name}.log", timeout)
            against_paper(name, result, args.smoke)
        report["sections"][name] = result
        report["wall_seconds"] = round(time.monotonic() - started, 1)
        report.update(derived(report))
        write_report(out / JSON_NAME, report)
        print(result_line(index, len(selected), name, result), flush=True)
    if not args.keep and args.scratch is None:
        shutil.rmtree(scratch, ignore_errors=True)
    line, passed = verdict(report, set(args.allow_skip))
    report["verdict"] = line
    report["passed"] = passed
    write_report(out / JSON_NAME, report)
    print(f"gpu-check: {out / JSON_NAME} ({report['wall_seconds']:.0f} s of {args.budget_s:.0f})")
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
