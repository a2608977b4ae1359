"""The export's ``run/`` copies of the run records carry no local paths; the originals stay as they were."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from asr.export.card import RunRecords
from asr.export.run import _copy_run_records
from tests.unit.export.test_card import METRICS, SUMMARY_NESTED, write_run

ELSEWHERE = "/home/someone/corpora/cs-mage"


def _absolute_run(run: Path) -> Path:
    """A run folder whose records hold absolute paths, as a run with absolute output_dir/data writes them."""
    command = (
        f"asr finetune --config {run}/config.yaml data={ELSEWHERE} output_dir={run} "
        f"model=/home/someone/models/whisper-base lora.r=16"
    )
    config = {
        "model": "/home/someone/models/whisper-base",
        "method": "lora",
        "data": ELSEWHERE,
        "train_manifest": f"{ELSEWHERE}/manifests/train.jsonl",
        "output_dir": str(run),
        "deepspeed": None,
        "lora": {"r": 16},
    }
    summary = {
        **SUMMARY_NESTED,
        "output_dir": str(run),
        "best_dir": str(run / "best"),
        "best_checkpoint": str(run / "checkpoint-1200"),
        "provenance": {"command": command, "platform": "Linux"},
        "config": config,
    }
    metrics = {**METRICS, "checkpoint": str(run / "best"), "provenance": {"command": command}}
    write_run(run, summary=summary, metrics=metrics)
    header = f"# resolved config of this run; rerun with:\n# asr finetune --config {run / 'config.yaml'}\n"
    (run / "config.yaml").write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return run


def test_run_copies_hold_paths_relative_to_the_run(tmp_path: Path) -> None:
    run = _absolute_run(tmp_path / "runs" / "wb-lora")
    originals = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    staging = tmp_path / "export"
    staging.mkdir()

    assert _copy_run_records(RunRecords.load(run), staging) is True

    for name in ("config.yaml", "summary.json", "metrics_test.json"):
        text = (staging / "run" / name).read_text(encoding="utf-8")
        assert str(tmp_path) not in text and "/home/someone" not in text, (name, text)
    summary = json.loads((staging / "run" / "summary.json").read_text(encoding="utf-8"))
    assert (summary["output_dir"], summary["best_dir"], summary["best_checkpoint"]) == (
        ".",
        "best",
        "checkpoint-1200",
    )
    assert summary["config"]["data"] == "cs-mage" and summary["config"]["output_dir"] == "."
    assert summary["config"]["model"] == "whisper-base"
    assert summary["config"]["train_manifest"] == "train.jsonl"
    assert summary["provenance"]["command"] == (
        "asr finetune --config config.yaml data=cs-mage output_dir=. model=whisper-base lora.r=16"
    )
    assert summary["test"] == SUMMARY_NESTED["test"] and summary["provenance"]["platform"] == "Linux"

    config_text = (staging / "run" / "config.yaml").read_text(encoding="utf-8")
    assert config_text.startswith(
        "# resolved config of this run; rerun with:\n# asr finetune --config config.yaml\n"
    )
    config = yaml.safe_load(config_text)
    assert (config["data"], config["output_dir"], config["lora"]) == ("cs-mage", ".", {"r": 16})

    metrics = json.loads((staging / "run" / "metrics_test.json").read_text(encoding="utf-8"))
    assert metrics["checkpoint"] == "best" and metrics["cer"] == METRICS["cer"]

    # the run's own records are untouched
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == originals


def test_relative_paths_and_registry_names_stay(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")  # SUMMARY_NESTED: paths relative to the working folder
    staging = tmp_path / "export"
    staging.mkdir()
    _copy_run_records(RunRecords.load(run), staging)
    summary = json.loads((staging / "run" / "summary.json").read_text(encoding="utf-8"))
    assert summary["output_dir"] == "runs/wb" and summary["config"]["model"] == "whisper-base"
    assert summary["provenance"]["command"] == SUMMARY_NESTED["provenance"]["command"]


def test_unparsable_record_is_left_out(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run")
    (run / "summary.json").write_text('{"output_dir": "/home/someone/run", ', encoding="utf-8")
    staging = tmp_path / "export"
    staging.mkdir()
    _copy_run_records(RunRecords.load(run), staging)
    assert not (staging / "run" / "summary.json").exists()
    assert (staging / "run" / "config.yaml").is_file()
