"""``asr evaluate`` / ``asr zero-shot`` end to end on a tiny random Whisper and the demo corpus."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.predictions import COLUMNS

pytestmark = pytest.mark.e2e


def _evaluate(model: Path, manifest: Path, out: Path, *extra: str) -> int:
    return main(
        [
            "evaluate",
            "--model",
            str(model),
            "--manifest",
            str(manifest),
            "--out",
            str(out),
            "--limit",
            "6",
            "--batch-size",
            "4",
            "--no-progress",
            "--bootstrap",
            "200",
            *extra,
        ]
    )


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_evaluate_writes_complete_outputs(tiny_whisper: Path, demo_data: Path, tmp_path: Path) -> None:
    manifest = demo_data / "manifests" / "test.jsonl"
    assert _evaluate(tiny_whisper, manifest, tmp_path / "run") == 0
    rows = _rows(tmp_path / "run" / "predictions.csv")
    assert len(rows) == 6 and list(rows[0]) == COLUMNS
    assert all(float(r["duration"]) > 0 and float(r["decode_seconds"]) > 0 for r in rows)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    for key in ("cer", "cer_ci95", "substitutions", "deletions", "insertions", "ser", "wer", "rtf"):
        assert key in metrics, key
    assert metrics["n_utterances"] == 6
    assert metrics["decoding"]["guard"] is True and metrics["decoding"]["max_tokens_per_second"] == 12.0
    assert metrics["decoding"]["language"] == "zh" and metrics["decoding"]["return_timestamps"] is False
    assert metrics["provenance"]["toolkit_version"]
    assert (tmp_path / "run" / "per_utterance.csv").is_file()
    assert (tmp_path / "run" / "report.html").is_file()  # written by the recipe, not by scoring
    timing = metrics["timing"]  # where the command's time went, phase by phase
    phases = [timing[f"{p}_seconds"] for p in ("import", "load", "decode", "finish")]
    assert all(s >= 0 for s in phases) and sum(phases) == pytest.approx(timing["total_seconds"], abs=0.005)
    assert timing["decode_seconds"] >= metrics["decode_seconds"] > 0  # all batches' model time is inside


def test_existing_output_needs_resume(tiny_whisper: Path, demo_data: Path, tmp_path: Path) -> None:
    manifest = demo_data / "manifests" / "test.jsonl"
    assert _evaluate(tiny_whisper, manifest, tmp_path / "run") == 0
    assert _evaluate(tiny_whisper, manifest, tmp_path / "run") == 2
    # resuming with different decoding settings is refused, not silently mixed
    assert _evaluate(tiny_whisper, manifest, tmp_path / "run", "--resume", "--beam-size", "2") == 2


def test_killed_run_resumes_to_the_same_files(
    tiny_whisper: Path, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = demo_data / "manifests" / "test.jsonl"
    assert _evaluate(tiny_whisper, manifest, tmp_path / "full") == 0

    from asr.models.whisper.model import WhisperASR

    original = WhisperASR.transcribe
    calls = {"n": 0}

    def dies_on_second_batch(self, waves, options, durations=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, waves, options, durations)

    monkeypatch.setattr(WhisperASR, "transcribe", dies_on_second_batch)
    assert _evaluate(tiny_whisper, manifest, tmp_path / "killed") == 130
    partial = _rows(tmp_path / "killed" / "predictions.csv")
    assert len(partial) == 4  # the first batch was made durable before the kill
    monkeypatch.setattr(WhisperASR, "transcribe", original)
    assert _evaluate(tiny_whisper, manifest, tmp_path / "killed", "--resume") == 0

    def strip_timing(rows: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "decode_seconds"} for r in rows]

    assert strip_timing(_rows(tmp_path / "killed" / "predictions.csv")) == strip_timing(
        _rows(tmp_path / "full" / "predictions.csv")
    )
    a = json.loads((tmp_path / "full" / "metrics.json").read_text(encoding="utf-8"))
    b = json.loads((tmp_path / "killed" / "metrics.json").read_text(encoding="utf-8"))
    assert a["cer"] == b["cer"] and a["cer_ci95"] == b["cer_ci95"]


def test_batched_equals_one_by_one(tiny_whisper: Path, demo_data: Path, tmp_path: Path) -> None:
    manifest = demo_data / "manifests" / "test.jsonl"
    assert _evaluate(tiny_whisper, manifest, tmp_path / "b4") == 0
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(tiny_whisper),
                "--manifest",
                str(manifest),
                "--out",
                str(tmp_path / "b1"),
                "--limit",
                "6",
                "--batch-size",
                "1",
                "--no-progress",
                "--bootstrap",
                "200",
            ]
        )
        == 0
    )
    b4 = {r["id"]: r["prediction_raw"] for r in _rows(tmp_path / "b4" / "predictions.csv")}
    b1 = {r["id"]: r["prediction_raw"] for r in _rows(tmp_path / "b1" / "predictions.csv")}
    assert b4 == b1


def test_zero_shot_table_keeps_going_past_unreachable_models(
    tiny_whisper: Path, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("ASR_TRY_MODELSCOPE", "0")
    monkeypatch.setenv("ASR_MODELS_DIR", str(tmp_path / "no-models"))
    manifest = demo_data / "manifests" / "test.jsonl"
    code = main(
        [
            "zero-shot",
            "--manifest",
            str(manifest),
            "--out",
            str(tmp_path / "zs"),
            "--limit",
            "4",
            "--models",
            str(tiny_whisper),
            "whisper-small",
            "--no-progress",
        ]
    )
    assert code == 0
    with (tmp_path / "zs" / "zero_shot.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["model"] for r in rows] == [str(tiny_whisper), "whisper-small"]
    assert rows[0]["error"] == "" and float(rows[0]["cer"]) >= 0
    assert "HF_ENDPOINT" in rows[1]["error"]


def test_models_lists_every_registered_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    names = [m["name"] for m in json.loads(capsys.readouterr().out)]
    assert names == [
        "whisper-tiny",
        "whisper-base",
        "whisper-small",
        "whisper-large-v3-turbo",
        "whisper-large-v3",
        "xlsr-53-zh",
        "paraformer-large",
        "sensevoice-small",
        "qwen3-asr-0.6b",
        "qwen3-asr-1.7b",
        "glm-asr-nano",
        "fun-asr-nano",
    ]


def test_ct2_backend_matches_torch_greedy(tiny_whisper: Path, demo_data: Path, tmp_path: Path) -> None:
    manifest = demo_data / "manifests" / "test.jsonl"
    assert _evaluate(tiny_whisper, manifest, tmp_path / "torch", "--backend", "torch") == 0
    assert (
        _evaluate(
            tiny_whisper, manifest, tmp_path / "ct2", "--backend", "ct2", "--ct2-compute-type", "float32"
        )
        == 0
    )
    torch_rows = {r["id"]: r["prediction_raw"] for r in _rows(tmp_path / "torch" / "predictions.csv")}
    ct2_rows = {r["id"]: r["prediction_raw"] for r in _rows(tmp_path / "ct2" / "predictions.csv")}
    assert ct2_rows == torch_rows
    metrics = json.loads((tmp_path / "ct2" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["decoding"]["backend"] == "ct2" and metrics["decoding"]["compute_type"] == "float32"


def test_audio_context_on_both_backends(tiny_whisper: Path, demo_data: Path, tmp_path: Path) -> None:
    """Stock checkpoints decode at auto unless told; the context used is in metrics.json."""
    manifest = demo_data / "manifests" / "test.jsonl"
    runs = {
        "default": [],
        "full": ["--audio-context", "full"],
        "floor5": ["--audio-context", "5"],
        "ct2": ["--backend", "ct2"],
    }
    for name, flags in runs.items():
        assert _evaluate(tiny_whisper, manifest, tmp_path / name, *flags) == 0, name
    contexts = {
        name: json.loads((tmp_path / name / "metrics.json").read_text(encoding="utf-8"))["decoding"][
            "audio_context"
        ]
        for name in runs
    }
    assert contexts == {"default": "auto", "full": "full", "floor5": "5", "ct2": "auto"}
    with pytest.raises(SystemExit) as exc:  # argparse rejects it before any work
        _evaluate(tiny_whisper, manifest, tmp_path / "bad", "--audio-context", "45")
    assert exc.value.code == 2
