"""The throughput model on paper: BENCHMARKS.md's table is what ``benchmarks.throughput_model`` computes,
and its parts add up as the reading says."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.throughput_model import MODELS, model_utt_per_s, table

BENCHMARKS = Path(__file__).resolve().parents[3] / "BENCHMARKS.md"


def test_benchmarks_md_holds_the_computed_table() -> None:
    assert table() in BENCHMARKS.read_text(encoding="utf-8")


def test_whisper_small_by_hand() -> None:
    small = MODELS["whisper-small"]
    # encoder: 12 layers x 1500 positions x (8 d^2 + 4 d ffn) + attention 4 n^2 d, plus two convolutions
    layers = 12 * (1500 * (8 * 768**2 + 4 * 768 * 3072) + 4 * 1500**2 * 768)
    convs = 2 * 3 * 80 * 768 * 3000 + 2 * 3 * 768 * 768 * 1500
    assert small.encoder(30) == layers + convs
    assert small.encoder(30) / small.decode() == pytest.approx(0.8706, abs=1e-4)
    assert small.train("full") == pytest.approx(1.5 * small.train("lora"))
    assert model_utt_per_s("whisper-small", "lora") == pytest.approx(0.4 * 989.4e12 / small.train("lora"))
    assert small.train("lora", context=10) / 1e9 == pytest.approx(236.3, abs=0.1)
