"""Decoding backends of Whisper on the CPU: what ``--backend auto`` picks against torch fp32.

    python -m benchmarks.backend [--set NAME=MANIFEST ...] [--model DIR] [--limit N]

One process, the same weights and clips, length-sorted batches as ``asr evaluate`` makes them;
per batch each system decodes in turn, the order rotating (so a machine shared with other jobs
slows all alike): (1) torch fp32 (``--backend torch``, the baseline); (2) what ``--backend auto``
resolves to here (CTranslate2 int8 where ctranslate2 is installed); (3) CTranslate2 float32
(is a CER change int8's or CTranslate2's?); (4) torch with dynamic int8 quantization of every
Linear layer (``torch.ao.quantization.quantize_dynamic``), the candidate without ctranslate2.
Per set: utterances/s, speed against (1), CER, SER, insertions/deletions, empty hypotheses and
how far each system's hypotheses are from (1)'s. Default sets: the demo test split
(``make prepare-demo``) and the held-out set (``make heldout``). Saves
``runs/benchmarks/backend.json`` and rewrites the ``backend`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.errors import ConfigError
from asr.models import load_model
from asr.models.whisper.options import WhisperDecodeOptions
from benchmarks.markdown import add_common_arguments, check_writable, publish
from benchmarks.packing import Decoder, rows_for, run_interleaved, table

REPO = Path(__file__).resolve().parents[1]
TITLE = "Decoding backend"
DEFAULT_SETS = (
    f"demo-test={REPO / 'runs/demo/data/manifests/test.jsonl'}",
    f"heldout={REPO / 'runs/heldout/data/manifests/all.jsonl'}",
)


def parse_set(spec: str) -> tuple[str, Path]:
    """``NAME=MANIFEST``; the manifest must exist (the defaults come from ``make prepare-demo heldout``)."""
    name, sep, path = spec.partition("=")
    if not sep or not name or not path:
        raise ConfigError(f"--set {spec!r}: expected NAME=MANIFEST")
    if not Path(path).is_file():
        raise ConfigError(
            f"--set {spec!r}: {path} not found (make prepare-demo / make heldout write the defaults)"
        )
    return name, Path(path)


def systems(model_dir: Path) -> dict[str, Decoder]:
    """The decoders compared, by row name (the first is the baseline); one loaded model each."""
    options = WhisperDecodeOptions()

    def loaded(backend: str, **kwargs) -> object:
        model = load_model(str(model_dir), device="cpu", dtype="fp32")
        model.set_backend(backend, **kwargs)
        return model

    torch_fp32, auto = loaded("torch"), loaded("auto")
    auto_name = auto.decoding_settings(options)
    auto_label = f"{auto_name['backend']} {auto_name.get('compute_type', 'float32')}"
    ct2_fp32 = loaded("ct2", compute_type="float32")
    torch_int8 = loaded("torch")
    torch_int8.model = torch.ao.quantization.quantize_dynamic(
        torch_int8.model, {torch.nn.Linear}, dtype=torch.qint8
    )
    return {
        "torch fp32 (--backend torch)": lambda w, d: torch_fp32.transcribe(w, options, d),
        f"--backend auto: {auto_label}": lambda w, d: auto.transcribe(w, options, d),
        "ct2 float32": lambda w, d: ct2_fp32.transcribe(w, options, d),
        "torch dynamic int8 (Linear layers)": lambda w, d: torch_int8.transcribe(w, options, d),
    }


def render(result: dict) -> str:
    """The section's tables from a saved result, one per set."""
    lines = [
        f"Whisper `{result['model']}`, CPU {result['threads']} threads, batch {result['batch_size']}, greedy, "
        "no other flags; one process, systems interleaved batch by batch.",
    ]
    for entry in result["sets"]:
        lines += [
            "",
            f"**{entry['name']}**: {entry['n_clips']} clips ({entry['audio_seconds']:.0f} s), `{entry['manifest']}`",
            "",
            *table(entry["rows"], "torch fp32", fallback_column=False),
        ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=None,
        metavar="NAME=MANIFEST",
        help="a data set (repeatable; default: the demo test split and the held-out set)",
    )
    parser.add_argument("--model", type=Path, default=REPO / "models/whisper-base")
    parser.add_argument("--limit", type=int, default=None, help="first N clips of each set")
    parser.add_argument("--batch-size", type=int, default=16)
    add_common_arguments(parser, (), "backend")


def run(args: argparse.Namespace) -> int:
    sets = [parse_set(s) for s in (args.sets or DEFAULT_SETS)]
    check_writable(args)
    torch.set_num_threads(args.threads)
    decoders = systems(args.model)
    results = []
    for name, manifest in sets:
        utts = sorted(read_manifest(manifest)[: args.limit], key=lambda u: u.duration)
        waves = [load_audio(u.audio) for u in utts]
        durations = [u.duration for u in utts]
        print(
            f"{name}: {len(utts)} clips, {sum(durations):.0f} s of audio, {args.threads} threads", flush=True
        )
        if not results:  # first calls pay one-off costs (lazy imports, allocator, ct2 threads): untimed
            for decode in decoders.values():
                decode(waves[:2], durations[:2])
        hyps, seconds = run_interleaved(decoders, waves, durations, args.batch_size)
        rows = rows_for(utts, hyps, seconds, "")
        results.append(
            {
                "name": name,
                "manifest": manifest.relative_to(REPO).as_posix()
                if manifest.is_relative_to(REPO)
                else str(manifest),
                "n_clips": len(utts),
                "audio_seconds": sum(durations),
                "rows": rows,
            }
        )
    result = {
        "model": args.model.name,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "sets": results,
    }
    publish(args, "backend", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
