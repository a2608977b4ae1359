"""``asr evaluate --packing`` on a tiny random Whisper: a window whose attribution fails is decoded unpacked."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.manifest import read_manifest
from asr.inference import length_sorted_batches
from asr.models.whisper import packing as whisper_packing
from asr.models.whisper.packing_plan import Attribution

pytestmark = pytest.mark.e2e


def _evaluate(model: Path, manifest: Path, out: Path, *extra: str) -> dict[str, str]:
    args = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    args += ["--limit", "6", "--batch-size", "6", "--no-progress", "--bootstrap", "0", *extra]
    assert main(args) == 0
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return {r["id"]: r["prediction_raw"] for r in csv.DictReader(f)}


def test_a_failed_attribution_gives_the_unpacked_texts_and_is_counted(
    tiny_whisper: Path, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six 2.5-3.7 s clips in one batch, 3 s apart: two windows (of 29 s at most); the first fails
    attribution and its clips get exactly the texts of an unpacked run, the second keeps its own."""
    manifest = demo_data / "manifests" / "test.jsonl"
    unpacked = _evaluate(
        tiny_whisper, manifest, tmp_path / "unpacked", "--audio-context", "full", "--no-packing"
    )
    windows: list[tuple[int, ...]] = []

    def fail_first(asr_model, seq, window, ids, options, speech) -> Attribution:
        windows.append(window.indices)
        if len(windows) == 1:
            return Attribution.failed(len(window.indices), "forced")
        return Attribution(tuple(f"kept {k}" for k in window.indices))  # a random model cannot attribute

    monkeypatch.setattr(whisper_packing, "_attribute_window", fail_first)
    packed = _evaluate(tiny_whisper, manifest, tmp_path / "packed", "--packing", "--packing-gap", "3")
    assert windows == [(0, 1, 2, 3), (4, 5)]
    metrics = json.loads((tmp_path / "packed" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["decoding"]["packing"] is True and metrics["decoding"]["audio_context"] == "full"
    assert metrics["decode_stats"] == {
        "packed_windows": 2,
        "packing_fallback_windows": 1,
        "packing_fallback_clips": 4,
    }
    batch = [
        u.id for u in length_sorted_batches(read_manifest(manifest)[:6], 6)[0]
    ]  # as the windows index it
    fell_back = [batch[k] for k in windows[0]]
    assert {i: packed[i] for i in fell_back} == {i: unpacked[i] for i in fell_back}
    assert [packed[batch[k]] for k in windows[1]] == ["kept 4", "kept 5"]  # the other window stays packed
    assert (
        json.loads((tmp_path / "unpacked" / "metrics.json").read_text(encoding="utf-8")).get("decode_stats")
        is None
    )
