"""Each benchmark renders its section from the JSON it saves, and BENCHMARKS.md holds each section once."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest

from benchmarks import (
    backend,
    context_biasing,
    export_pipeline,
    footprint,
    inference,
    longform,
    lora_memory,
    markdown,
    packing,
    scoring,
    training,
    whole_process,
)

MIB = 2**20


def _training() -> dict:
    def phase(seconds: float, cer: float) -> dict:
        return {"train_seconds": seconds, "losses": {1: 2.9, 30: 0.6}, "peak_rss": 2000 * MIB,
                "baseline_rss": 700 * MIB, "validation": {"cer": cer, "substitutions": 110, "deletions": 8,
                "insertions": 3, "n_utterances": 20}}  # fmt: skip

    phases = {"authors": {**phase(240.0, 0.847), "prep_seconds": 2.5}}
    phases |= {name: phase(40.0, 0.661) for name in training.ENGINE}
    phases |= {m: {**phase(9.0, 0.0), "trainable": t, "total": 72_593_920} for m, t in (("lora", 2_359_296),
               ("full", 72_593_920))}  # fmt: skip
    return {"model": "whisper-base", "n_clips": 80, "n_val": 20, "batch_size": 8, "steps": 30,
            "memory_steps": 2, "threads": 2, "phases": phases}  # fmt: skip


def _inference() -> dict:
    rows = [{"system": s, "seconds": 10.0, "utt_per_s": u, "rtf": 0.1, "cer": 0.861, "insertions": 3}
            for s, u in (("(a) openai-whisper", 0.73), ("(d) asr evaluate", 3.52))]  # fmt: skip
    return {"model": "base", "n_clips": 20, "audio_seconds": 52.0, "threads": 2, "rows": rows}


def _footprint() -> dict:
    ev = {
        "parameters": 72_600_000,
        "load_seconds": 2.8,
        "peak_rss": 1.23 * 2**30,
        "seconds_per_utterance": 0.61,
    }
    tr = {
        "parameters": 72_600_000,
        "trainable_parameters": 2_360_000,
        "peak_rss": 6.48 * 2**30,
        "step_seconds": 4.9,
    }
    return {"models": ["whisper-base", "xlsr-53-zh", "whisper-small"], "threads": 2, "audio_seconds": 3.4,
            "batch_size": 4, "steps": 2, "rows": {"whisper-base": {"eval": ev, "train": tr},
            "whisper-small": {"eval": ev}}, "failures": {"xlsr-53-zh": "eval failed (exit 1)"},
            "notes": {"whisper-small": "train over 3600 s"}}  # fmt: skip


def _packing() -> dict:
    row = {"system": "ct2: packed, gap 1 s", "utt_per_s": 2.29, "speed": 4.42, "cer": 0.8984, "ser": 1.0,
           "ins": 16, "dele": 237, "empty": 0, "fallback": [3, 27], "differs": 0.992, "cer_vs_full": 0.9228}  # fmt: skip
    sub = {**row, "system": "ct2, test split only: packed, gap 1 s", "utt_per_s": None, "speed": None}
    sub.pop("fallback")
    return {"model": "whisper-base", "threads": 2, "batch_size": 16,
            "sets": [{"name": "demo all", "n_clips": 120, "audio_seconds": 311.0, "rows": [row, sub]}]}  # fmt: skip


def _context_biasing() -> dict:
    row = {"set": "demo", "subset": "all", "condition": "own names, per-utterance context", "clips": 120,
           "cer": 0.8712, "changed": 9, "occurrences": 12, "exact": 3, "name_chars": 32, "name_errors": 20,
           "false": 1}  # fmt: skip
    return {"model": "whisper-base", "backend": "ct2", "threads": 2, "batch_size": 16,
            "names": {"demo": ["长沙", "岳麓山"]}, "decoys": ["杭州"], "rows": [row]}  # fmt: skip


CASES = {
    training: (
        _training(),
        [
            "| (a) authors' recipe",
            "1.00x",
            "6.00x",
            "0.8470 (110/8/3)",
            "1: 2.900, 30: 0.600",
            "| lora | 2,359,296 | 3.25% |",
        ],
    ),
    inference: (_inference(), ["| (d) asr evaluate | 3.52 | 0.100 | 0.8610 | 3 | 4.82x |"]),
    footprint: (
        _footprint(),
        [
            "| whisper-base | 72.6 M | 2.36 M (3.25%) | 2.8 s | 1.23 GiB | 0.61 | 6.48 GiB | 4.9 |",
            "| xlsr-53-zh | not measured: eval failed (exit 1) |",
            "| whisper-small | 72.6 M | - |",
            "- whisper-small: train over 3600 s",
        ],
    ),
    longform: (
        {
            "clips": 60,
            "audio_seconds": 234.0,
            "threads": 2,
            "batch_size": 16,
            "repeats": 3,
            "rows": [
                {"system": "(a) fw", "seconds": 29.6, "rtf": 0.126, "cer": 0.7621},
                {"system": "(b) ours", "seconds": 28.5, "rtf": 0.121, "cer": 0.7424},
            ],
        },
        ["3.9 min recording", "| (b) ours | 28.5 | 0.121 | 0.7424 | 1.04x |"],
    ),
    packing: (
        _packing(),
        [
            "**demo all**: 120 clips (311 s)",
            "| ct2: packed, gap 1 s | 2.29 | 4.42x | 0.8984 | 1.000 | 16 | 237 | 0 | 3/27 | 99.2% | 0.9228 |",
            "| ct2, test split only: packed, gap 1 s | - | - | 0.8984 | 1.000 | 16 | 237 | 0 | - | 99.2% | 0.9228 |",
        ],
    ),
    backend: (
        {
            "model": "whisper-base",
            "threads": 2,
            "batch_size": 16,
            "sets": [
                {
                    "name": "heldout",
                    "manifest": "runs/heldout/data/manifests/all.jsonl",
                    "n_clips": 40,
                    "audio_seconds": 162.6,
                    "rows": _packing()["sets"][0]["rows"][:1],
                }
            ],
        },
        [
            "**heldout**: 40 clips (163 s)",
            "| speed vs torch fp32 |",
            "| ct2: packed, gap 1 s | 2.29 | 4.42x | 0.8984 | 1.000 | 16 | 237 | 0 | 99.2% | 0.9228 |",
        ],
    ),
    lora_memory: (
        {
            "model": "whisper-base",
            "batch_size": 8,
            "seconds": 5.0,
            "rss_added_mib": [{"setup": "full", "glibc_default": 5515, "fixed_thresholds": 3787}],
            "rows": [
                {"setup": "full", "saved_bytes": 3149 * MIB, "state_bytes": 1108 * MIB},
                {"setup": "lora", "saved_bytes": 3664 * MIB, "state_bytes": 36 * MIB},
            ],
        },
        ["| full | 5515 MiB | 3787 MiB |", "| lora | 3664 MiB | 36 MiB | 3700 MiB | 0.87x |"],
    ),
    scoring: (
        {
            "n_utterances": 100_000,
            "ref_chars": 2_250_000,
            "cer": 0.1,
            "cer_ci95": [0.09, 0.11],
            "score_seconds": 98.0,
            "score_utt_per_s": 1020,
            "bootstrap_1000_seconds": 4.0,
            "jieba_segmentation_seconds": 114.0,
            "cer_only_seconds": 1.5,
            "cer_only_utt_per_s": 66667,
            "naive_dp_seconds_extrapolated": 48.0,
            "naive_dp_utt_per_s": 2083,
            "naive_subset": 2000,
            "speedup_cer_only_vs_naive": 32.0,
            "speedup_full_score_vs_naive": 0.49,
        },
        [
            "2,250,000 reference characters",
            "| `cer()` (rapidfuzz edit operations, exact) | 1.5 s | 66,667 |",
            "32x as fast",
        ],
    ),
    context_biasing: (
        _context_biasing(),
        [
            "| demo all | 120 | own names, per-utterance context | 0.8712 | 12 | 3 (25%) | 0.6250 | 1 | 9 |",
            "demo: 长沙，岳麓山",
        ],
    ),
    export_pipeline: (
        {
            "model": "runs/x/export",
            "manifest": "test.jsonl",
            "n_clips": 20,
            "rows": [
                {
                    "decoder": "pipeline",
                    "cer": 0.508,
                    "substitutions": 86,
                    "deletions": 6,
                    "insertions": 3,
                    "seconds": 282.6,
                }
            ],
        },
        ["| pipeline | 0.5080 | 86 | 6 | 3 | 282.6 |"],
    ),
    whole_process: (
        {
            "model": "/m/whisper-base",
            "threads": 2,
            "repeats": 2,
            "sets": [
                {
                    "name": "demo test",
                    "manifest": "t.jsonl",
                    "n_clips": 20,
                    "audio_seconds": 52.3,
                    "seconds": {"d": 7.4, "b": 13.8, "c": 3.5},
                    "cer": {"d": 0.8877, "b": 2.5668, "c": 0.8877},
                    "timing": {
                        "import_seconds": 2.7,
                        "load_seconds": 1.0,
                        "decode_seconds": 2.9,
                        "finish_seconds": 0.4,
                    },
                }
            ],
        },
        [
            "**demo test**: 20 clips (52 s), `t.jsonl`",
            "| (d) `asr evaluate`, no flags | 7.4 | 0.47x | 0.8877 |",
            "| (c) faster-whisper BatchedInferencePipeline, clips joined (int8, batch 8) | 3.5 | 1.00x | 0.8877 |",
            "(d) split: import 2.7 s, load 1.0 s, decode 2.9 s, finish 0.4 s",
        ],
    ),
}


@pytest.mark.parametrize("module", CASES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_render_from_the_saved_json(module) -> None:
    result, expected = CASES[module]
    text = module.render(json.loads(json.dumps(result)))  # what a rerun of benchmarks.markdown reads back
    for piece in expected:
        assert piece in text
    assert module.TITLE


def test_benchmarks_md_holds_each_section_once() -> None:
    text = markdown.BENCHMARKS.read_text(encoding="utf-8")
    headings = re.findall(r"^##+ .*$", text, flags=re.M)
    assert len(headings) == len(set(headings)), "a repeated heading"
    for section in re.findall(r"<!-- benchmark:([\w-]+) -->", text):
        assert text.count(markdown.begin_marker(section)) == 1
        assert text.count(markdown.end_marker(section)) == 1
    assert "-dirty" not in text


def test_every_benchmark_has_its_default_section() -> None:
    text = markdown.BENCHMARKS.read_text(encoding="utf-8")
    for module in CASES:
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        section = parser.get_default("section")
        assert markdown.begin_marker(section) in text, section
    assert Path(markdown.REPO / "tests" / "reliability" / "README.md").is_file()
