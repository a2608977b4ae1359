"""Whole-process time with no flags: ``asr evaluate`` against faster-whisper, each a fresh process.

    python -m benchmarks.whole_process [--set NAME:MANIFEST ...] [--model DIR] [--ct2-model DIR]

What a user waits for, start-up and finish included, on the same clips and the same Whisper base
weights: (d) ``asr evaluate --model M --manifest X --out D`` with no other flag; (b)
faster-whisper one file at a time (int8, greedy); (c) faster-whisper's ``BatchedInferencePipeline``
(VAD, int8, batch 8) over the clips joined into one recording with 1.5 s pauses (written before
the clock starts), scored as one text against the joined references. Every system runs as its own
process with ``OMP_NUM_THREADS=--threads``, in turn, ``--repeats`` times (the median is kept), so a
busy machine slows them alike. (d)'s ``metrics.json`` ``timing`` splits its time into import,
load, decode and finish. Default sets: the demo test split and, where ``make heldout`` has been
run, the held-out set. Saves ``runs/benchmarks/whole-process.json`` and rewrites that section of
BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.metrics import score
from benchmarks.inference import joined_recording
from benchmarks.markdown import add_publish_arguments, check_writable, publish, table

REPO = Path(__file__).resolve().parents[1]
TITLE = "Whole process with no flags"
HELDOUT = REPO / "runs" / "heldout" / "data" / "manifests" / "all.jsonl"

# faster-whisper as a user runs it: argv = model dir, threads, then the audio files; prints JSON texts
FASTER_WHISPER = r"""
import json, sys
from faster_whisper import BatchedInferencePipeline, WhisperModel
model_dir, threads, mode, *files = sys.argv[1:]
model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=int(threads))
options = dict(language="zh", task="transcribe", beam_size=1, temperature=0.0)
if mode == "batched":
    pipe = BatchedInferencePipeline(model)
    texts = ["".join(s.text for s in pipe.transcribe(f, batch_size=8, **options)[0]) for f in files]
else:
    texts = ["".join(s.text for s in model.transcribe(f, condition_on_previous_text=False, **options)[0])
             for f in files]
print(json.dumps(texts, ensure_ascii=False))
"""


def _run(cmd: list[str], threads: int) -> tuple[float, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def measure_set(name: str, manifest: Path, model: Path, ct2_model: Path, threads: int, repeats: int) -> dict:
    """The three systems on one manifest: median whole-process seconds, CER, (d)'s phase split."""
    utts = read_manifest(manifest)
    audio_seconds = sum(u.duration or 0.0 for u in utts)
    work = Path(tempfile.mkdtemp(prefix="bench-whole-"))
    joined = joined_recording([load_audio(u.audio) for u in utts], work / "joined.wav")
    files = [str(u.audio) for u in utts]
    fw = [sys.executable, "-c", FASTER_WHISPER, str(ct2_model), str(threads)]
    seconds: dict[str, list[float]] = {"d": [], "b": [], "c": []}
    texts: dict[str, list[str]] = {}
    timings: list[dict] = []
    for repeat in range(repeats):
        out = work / f"eval-{repeat}"
        evaluate = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
        elapsed, _ = _run([sys.executable, "-m", "asr.cli", *evaluate, "--no-progress"], threads)
        seconds["d"].append(elapsed)
        timings.append(json.loads((out / "metrics.json").read_text(encoding="utf-8"))["timing"])
        with (out / "predictions.csv").open(encoding="utf-8") as f:
            by_id = {r["id"]: r["prediction"] for r in csv.DictReader(f)}
        texts["d"] = [by_id[u.id] for u in utts]
        elapsed, stdout = _run([*fw, "loop", *files], threads)
        seconds["b"].append(elapsed)
        texts["b"] = json.loads(stdout.strip().splitlines()[-1])
        elapsed, stdout = _run([*fw, "batched", str(joined)], threads)
        seconds["c"].append(elapsed)
        texts["c"] = json.loads(stdout.strip().splitlines()[-1])
        print(f"{name} run {repeat + 1}: " + ", ".join(f"({k}) {v[-1]:.1f} s" for k, v in seconds.items()))
    ids, refs = [u.id for u in utts], [u.text for u in utts]
    cer = {
        "d": score(ids, refs, texts["d"], n_bootstrap=0).metrics.cer,
        "b": score(ids, refs, texts["b"], n_bootstrap=0).metrics.cer,
        "c": score(["joined"], ["".join(refs)], texts["c"], n_bootstrap=0).metrics.cer,
    }
    phases = ("import_seconds", "load_seconds", "decode_seconds", "finish_seconds")
    split = {p: statistics.median(t[p] for t in timings) for p in phases}
    return {
        "name": name,
        "manifest": str(manifest),
        "n_clips": len(utts),
        "audio_seconds": audio_seconds,
        "seconds": {k: statistics.median(v) for k, v in seconds.items()},
        "cer": cer,
        "timing": split,
    }


SYSTEMS = {
    "d": "(d) `asr evaluate`, no flags",
    "b": "(b) faster-whisper, one file at a time (int8)",
    "c": "(c) faster-whisper BatchedInferencePipeline, clips joined (int8, batch 8)",
}


def render(result: dict) -> str:
    lines = [
        f"Whisper `{Path(result['model']).name}`, CPU, {result['threads']} threads, each system a fresh "
        f"process, median of {result['repeats']} run(s) in turn.",
    ]
    for s in result["sets"]:
        lines += [
            "",
            f"**{s['name']}**: {s['n_clips']} clips ({s['audio_seconds']:.0f} s), `{s['manifest']}`",
            "",
        ]
        rows = []
        for key, label in SYSTEMS.items():
            sec = s["seconds"][key]
            rows.append([label, f"{sec:.1f}", f"{s['seconds']['c'] / sec:.2f}x", f"{s['cer'][key]:.4f}"])
        lines += table(["system", "whole process (s)", "speed vs (c)", "CER"], rows)
        t = s["timing"]
        lines += [
            "",
            f"(d) split: import {t['import_seconds']:.1f} s, load {t['load_seconds']:.1f} s, "
            f"decode {t['decode_seconds']:.1f} s, finish {t['finish_seconds']:.1f} s (its `metrics.json` `timing`).",
        ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="NAME:MANIFEST",
        help="a clip set (repeatable; default: the demo test split, and the held-out set when present)",
    )
    parser.add_argument("--model", type=Path, default=None, help="default: whisper-base ($ASR_MODELS_DIR)")
    parser.add_argument(
        "--ct2-model", type=Path, default=None, help="faster-whisper's copy (default: the PyPI whisper-base)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=1)
    add_publish_arguments(parser, "whole-process")


def _default_sets() -> list[tuple[str, Path]]:
    from asr.data.prepare import prepare

    tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
    prepare(REPO / "demo" / "cs-mage-demo", tmp)
    sets = [("demo test", tmp / "manifests" / "test.jsonl")]
    if HELDOUT.is_file():
        sets.append(("held-out", HELDOUT))
    return sets


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    from asr.models.sources import resolve
    from asr.models.whisper.ct2_source import resolve_ct2_source

    sets = (
        [(s.partition(":")[0], Path(s.partition(":")[2])) for s in args.set] if args.set else _default_sets()
    )
    model = args.model or resolve("whisper-base")[1]
    ct2_model = args.ct2_model or resolve_ct2_source("pypi:whisper-base")
    result = {
        "model": str(model),
        "threads": args.threads,
        "repeats": args.repeats,
        "sets": [measure_set(n, m, model, ct2_model, args.threads, args.repeats) for n, m in sets],
    }
    publish(args, "whole_process", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
