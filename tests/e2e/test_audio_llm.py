"""The speech-LLM family end to end on tiny random Qwen3-ASR and GLM-ASR models and demo clips.

``asr evaluate``; ``asr finetune`` (LoRA, 2 steps) from the shipped config; ``asr export`` of the
result decoded by a plain transformers process (no code of ours) to the same text as ``asr evaluate``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.data.audio import load_audio
from asr.data.manifest import read_manifest, write_manifest
from asr.models import load_model
from asr.models.audio_llm.model import AudioLLMASR
from tests.e2e.speech_llm_runs import evaluate_rows, finetune_two_steps, train_texts
from tests.model_factory.audio_llm import build_tiny

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


@pytest.mark.parametrize("kind", ["qwen3_asr", "glmasr"])
def test_evaluate(kind: str, demo_data: Path, tmp_path: Path) -> None:
    model = build_tiny(tmp_path / "model", train_texts(demo_data), kind=kind)
    context = tmp_path / "context.txt"
    context.write_text("长沙话：岳麓山，橘子洲，坡子街\n", encoding="utf-8")
    manifest = demo_data / "manifests" / "test.jsonl"
    rows = evaluate_rows(model, manifest, tmp_path / "run", "--limit", "4", "--context", str(context))
    assert len(rows) == 4 and all(r["prediction"] for r in rows)
    assert not any("<asr_text>" in r["prediction"] for r in rows)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["n_utterances"] == 4 and "cer" in metrics
    decoding = metrics["decoding"]
    assert decoding["guard"] is True and decoding["model_type"] == kind
    assert decoding.get("forced_language") == ("Chinese" if kind == "qwen3_asr" else None)
    # Qwen3-ASR takes the context as its system prompt; GLM-ASR takes none
    recorded = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["decoding"]["context"]
    assert recorded == ("长沙话：岳麓山，橘子洲，坡子街" if kind == "qwen3_asr" else None)
    assert decoding["context"] == recorded


def test_per_utterance_context(demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``context`` manifest field decodes that utterance as ``--context`` would; the others keep ``--context``."""
    model = build_tiny(tmp_path / "model", train_texts(demo_data), kind="qwen3_asr")
    utts = read_manifest(demo_data / "manifests" / "test.jsonl")[:3]
    utts[1].extra["context"] = "岳麓山，橘子洲"
    write_manifest(tmp_path / "mixed.jsonl", utts)
    seen: list[tuple[int, str | None]] = []
    transcribe = AudioLLMASR.transcribe

    def spy(self, waves, options, durations=None):
        seen.append((len(waves), options.context))
        return transcribe(self, waves, options, durations)

    monkeypatch.setattr(AudioLLMASR, "transcribe", spy)
    mixed = evaluate_rows(
        model, tmp_path / "mixed.jsonl", tmp_path / "mixed", "--batch-size", "3", "--context", "坡子街"
    )
    assert sorted(seen) == [(1, "岳麓山，橘子洲"), (2, "坡子街")]
    write_manifest(tmp_path / "one.jsonl", utts[1:2])
    alone = evaluate_rows(model, tmp_path / "one.jsonl", tmp_path / "one", "--context", "岳麓山，橘子洲")
    assert [r["prediction_raw"] for r in mixed if r["id"] == utts[1].id] == [alone[0]["prediction_raw"]]


# The plain process: transformers and numpy only, as a user of the export would write it.
PLAIN_DECODE = """
import json, sys
import numpy as np
from transformers import AutoModelForSeq2SeqLM, AutoProcessor

folder, waves_file = sys.argv[1], sys.argv[2]
processor = AutoProcessor.from_pretrained(folder)
model = AutoModelForSeq2SeqLM.from_pretrained(folder).eval()
waves = list(np.load(waves_file, allow_pickle=False).values())
texts = []
for wave in waves:
    kwargs = {"language": "zh"} if model.config.model_type == "qwen3_asr" else {}
    inputs = processor.apply_transcription_request(wave, **kwargs)
    out = model.generate(**inputs, do_sample=False)
    text = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    texts.append(text.rpartition("<asr_text>")[2].strip())
print(json.dumps(texts))
"""


def test_lora_finetune_export_and_plain_transformers(few_clips: Path, tmp_path: Path) -> None:
    model = build_tiny(tmp_path / "model", train_texts(few_clips), kind="qwen3_asr")
    run = tmp_path / "run"
    summary = finetune_two_steps("qwen3-asr-0.6b-lora.yaml", model, few_clips, run)
    assert summary["family"] == "audio_llm"
    assert (run / "best" / "adapter_config.json").is_file()

    export = tmp_path / "export"
    assert main(["export", "--checkpoint", str(run / "best"), "--out", str(export)]) == 0
    assert (export / "model.safetensors").is_file() and not (export / "adapter_config.json").exists()
    assert load_model(str(export), device="cpu").family == "audio_llm"

    manifest = few_clips / "manifests" / "test.jsonl"
    ours = [r["prediction"] for r in evaluate_rows(export, manifest, tmp_path / "eval", "--no-guard")]
    assert len(ours) == 4 and all(ours)
    waves = {u.id: load_audio(u.audio) for u in read_manifest(manifest)}
    np.savez(tmp_path / "waves.npz", **waves)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # nothing of ours importable
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_DECODE, str(export), str(tmp_path / "waves.npz")],
        capture_output=True,
        text=True,
        env={**env, "OMP_NUM_THREADS": "1"},
        cwd=tmp_path,
        check=True,
    )
    assert json.loads(plain.stdout.splitlines()[-1]) == ours
