"""The demo's LoRA fine-tuning of the real Whisper base (CPU, about 5 minutes), pinned to the README.

Same config and schedule as ``make demo`` (``configs/schedules/demo.yaml``): LoRA on the decoder only, so the
frozen encoder's output is computed once per clip, which keeps this inside the CPU budget.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.shipped_configs import schedule_overrides
from asr.train.finetune_config import load_finetune_config
from asr.train.recipe import finetune

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
# README, Results, demo corpus: whisper-base + LoRA (decoder scope, best step 40), demo test split
README_TEST_CER, README_BEST_STEP = 0.4599, 40


def _predictions(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row["prediction"] for row in csv.DictReader(handle)}


@pytest.mark.timeout(1800)  # about 5 minutes on 2 idle cores; room for a busy runner
def test_demo_lora_reproduces_the_readme_and_best_reevaluates_exactly(
    whisper_base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The imported weights play the role of `make whisper-base`'s local copy of the registered model.
    monkeypatch.setenv("ASR_MODELS_DIR", str(whisper_base_dir.parent))
    assert whisper_base_dir.name == "whisper-base"
    data = tmp_path / "data"
    assert main(["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(data)]) == 0
    out = tmp_path / "run"
    overrides = [f"data={data}", f"output_dir={out}", "zero_shot=false", *schedule_overrides()]
    summary = finetune(load_finetune_config(REPO / "configs" / "whisper-base-lora.yaml", overrides))

    tuned = summary.test.fine_tuned["cer"]
    assert summary.best_step == README_BEST_STEP
    # one character of the 187 in the demo test split is 0.0053: a few characters of drift at most
    assert tuned == pytest.approx(README_TEST_CER, abs=0.025), tuned
    assert summary.trainable_parameters < 0.05 * summary.total_parameters

    again = tmp_path / "re-eval"
    manifest = data / "manifests" / "test.jsonl"
    argv = ["evaluate", "--model", str(out / "best"), "--manifest", str(manifest), "--out", str(again)]
    argv += ["--backend", "torch"]  # the engine the trainer's test pass decodes with
    assert main([*argv, "--bootstrap", "0", "--no-progress"]) == 0
    metrics = json.loads((again / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["cer"] == tuned
    # trained at the config's audio_context: recorded with the checkpoint, decoded at by default
    assert json.loads((out / "best" / "generation_config.json").read_text())["audio_context"] == "auto"
    assert metrics["decoding"]["audio_context"] == "auto"
    assert _predictions(again / "predictions.csv") == _predictions(out / "test" / "predictions.csv")
