"""Real tier: the demo test split rows of BENCHMARKS.md's "Context biasing" (whisper-base, ct2 int8),
through the benchmark's own decoding (global and per-utterance contexts via inference.transcribe_batch).
About a minute on 2 busy cores."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main
from asr.models import load_model
from benchmarks.context_biasing import demo_set, measure

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
# condition -> (CER, names found exactly of the split's 2, false names), as BENCHMARKS.md reports them
TEST_SPLIT = {
    "no context": (0.8877, 0, 0),
    "all names, global --context": (0.8984, 1, 1),
    "own names, per-utterance context": (0.8449, 2, 2),
    "decoy names, global --context": (0.8663, 0, 1),
}


def test_names_in_the_context_are_found_on_the_demo_test_split(
    whisper_base_dir: Path, tmp_path: Path
) -> None:
    assert main(["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(tmp_path)]) == 0
    clips = demo_set(tmp_path / "manifests")
    test = clips.subsets["test"]
    clips.utts, clips.waves = [clips.utts[i] for i in test], [clips.waves[i] for i in test]
    clips.subsets = {"test": list(range(len(test)))}
    model = load_model(str(whisper_base_dir), device="cpu", dtype="fp32")
    model.set_backend("ct2")
    rows = {r["condition"]: r for r in measure(clips, model, batch_size=16)["rows"]}
    got = {c: (round(r["cer"], 4), r["exact"], r["false"]) for c, r in rows.items()}
    assert got == TEST_SPLIT
