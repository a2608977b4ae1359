"""Fun-ASR-Nano end to end on a tiny random model and demo clips.

``asr evaluate``; ``asr finetune`` (LoRA, 2 steps) from the shipped config; ``asr export`` of the
result decoded by funasr's own ``AutoModel`` in a plain process (no code of ours) to the same text.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.manifest import read_manifest
from asr.models import load_model
from tests.e2e.speech_llm_runs import (
    evaluate_rows,
    finetune_two_steps,
    funasr_postprocess,
    plain_funasr_texts,
    train_texts,
)
from tests.model_factory import build

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


def test_evaluate(demo_data: Path, tmp_path: Path) -> None:
    model = build("fun-asr-nano", tmp_path / "model", texts=train_texts(demo_data))
    manifest = demo_data / "manifests" / "test.jsonl"
    rows = evaluate_rows(model, manifest, tmp_path / "run", "--limit", "4", "--context", "岳麓山，橘子洲")
    assert len(rows) == 4
    assert not any("<|" in r["prediction"] or "/sil" in r["prediction"] for r in rows)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_utterances"] == 4 and "cer" in metrics
    assert metrics["decoding"]["guard"] is True
    assert metrics["decoding"]["prompt"].endswith(
        "热词列表：[岳麓山, 橘子洲]\n语音转写成中文，不进行文本规整："
    )
    recorded = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["decoding"]["context"]
    assert recorded == "岳麓山，橘子洲"  # the hot words given, recorded with the run


def test_lora_finetune_export_and_plain_funasr(few_clips: Path, tmp_path: Path) -> None:
    model = build("fun-asr-nano", tmp_path / "model", texts=train_texts(few_clips))
    run = tmp_path / "run"
    summary = finetune_two_steps("fun-asr-nano-lora.yaml", model, few_clips, run)
    assert summary["family"] == "fun_asr_nano"

    export = tmp_path / "export"
    assert main(["export", "--checkpoint", str(run / "best"), "--out", str(export)]) == 0
    assert (export / "model.pt").is_file() and (export / "Qwen3-0.6B" / "config.json").is_file()
    assert load_model(str(export), device="cpu").family == "fun_asr_nano"

    manifest = few_clips / "manifests" / "test.jsonl"
    ours = [r["prediction_raw"] for r in evaluate_rows(export, manifest, tmp_path / "eval", "--no-guard")]
    assert len(ours) == 4
    plain = plain_funasr_texts(export, [u.audio for u in read_manifest(manifest)])
    assert plain == [funasr_postprocess(t) for t in ours]
