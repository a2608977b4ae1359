"""LoRA fine-tuning of the real Whisper base on the demo train split (CPU, a few minutes).

LoRA on the decoder only (``lora.scope=decoder``): the frozen encoder's output is computed
once per clip, which is what keeps this inside the CPU budget.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.train.config import load_finetune_config
from asr.train.run import finetune

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]


def _predictions(path: Path) -> dict[str, str]:
    with path.open(encoding="utf-8", newline="") as handle:
        return {row["id"]: row["prediction"] for row in csv.DictReader(handle)}


@pytest.mark.timeout(1800)  # about 5 minutes on 2 idle cores; room for a busy runner
def test_lora_decoder_beats_zero_shot_and_best_reevaluates_exactly(
    whisper_base_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The imported weights play the role of `make whisper-base`'s local copy of the registered model.
    monkeypatch.setenv("ASR_MODELS_DIR", str(whisper_base_dir.parent))
    assert whisper_base_dir.name == "whisper-base"
    data = tmp_path / "data"
    assert main(["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(data)]) == 0
    out = tmp_path / "run"
    cfg = load_finetune_config(
        REPO / "configs" / "whisper-base-lora.yaml",
        [
            f"data={data}",
            f"output_dir={out}",
            "lora.scope=decoder",
            "max_steps=60",
            "eval_steps=60",
            "save_steps=60",
            "eval_on_start=true",  # step 0 = the zero-shot validation CER
            "batch_size=8",
            "eval_batch_size=20",
            "num_workers=0",
            "zero_shot=false",
            "bootstrap=0",
            "logging_steps=5",
        ],
    )
    summary = finetune(cfg)

    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    cer = {r["step"]: r["eval_cer"] for r in log if "eval_cer" in r}
    assert sorted(cer) == [0, 60]
    zero_shot, tuned = cer[0], summary["best_validation_cer"]
    assert summary["best_step"] == 60 and tuned == cer[60]
    assert tuned <= 0.7 * zero_shot, f"validation CER {zero_shot:.3f} -> {tuned:.3f}: less than a 30% drop"
    assert summary["trainable_parameters"] < 0.05 * summary["total_parameters"]

    again = tmp_path / "re-eval"
    manifest = data / "manifests" / "validation.jsonl"
    argv = ["evaluate", "--model", str(out / "best"), "--manifest", str(manifest), "--out", str(again)]
    assert main([*argv, "--batch-size", "20", "--bootstrap", "0", "--no-progress"]) == 0
    metrics = json.loads((again / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["cer"] == tuned
    assert _predictions(again / "predictions.csv") == _predictions(
        out / "validation" / "step-60" / "predictions.csv"
    )
