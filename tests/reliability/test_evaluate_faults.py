"""``asr evaluate`` under bad output paths and resumed runs whose settings changed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from asr.cli import main

pytestmark = pytest.mark.e2e


def _evaluate(model: Path, manifest: Path, out: Path, *extra: str) -> int:
    argv = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    return main([*argv, "--limit", "4", "--batch-size", "4", "--no-progress", "--bootstrap", "0", *extra])


@pytest.fixture
def manifest(demo_data: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "test.jsonl"
    shutil.copyfile(demo_data / "manifests" / "test.jsonl", copy)
    return copy


def test_a_refused_call_does_not_rewrite_the_run_record(tiny_whisper, manifest, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    recorded = (out / "run.json").read_bytes()
    # without --resume the call is refused before it records anything ...
    assert _evaluate(tiny_whisper, manifest, out, "--beam-size", "2") == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (out / "run.json").read_bytes() == recorded
    # ... so a later --resume with other decoding settings is still caught
    assert _evaluate(tiny_whisper, manifest, out, "--resume", "--beam-size", "2") == 2
    assert "beam_size" in capsys.readouterr().err
    assert _evaluate(tiny_whisper, manifest, out, "--resume") == 0


@pytest.mark.parametrize(
    ("change", "setting"),
    [(["--batch-size", "2"], "batch_size"), (["--no-guard"], "decoding"), (["--limit", "3"], "limit")],
)
def test_resume_refuses_every_setting_that_changes_predictions(
    tiny_whisper, manifest, tmp_path, capsys, change, setting
) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    capsys.readouterr()
    assert _evaluate(tiny_whisper, manifest, out, "--resume", *change) == 2
    assert setting in capsys.readouterr().err


def test_resume_refuses_a_changed_manifest(tiny_whisper, manifest, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    rows = manifest.read_text(encoding="utf-8").splitlines()
    first = json.loads(rows[0])
    first["text"] = "别的字"
    manifest.write_text(
        "\n".join([json.dumps(first, ensure_ascii=False), *rows[1:]]) + "\n", encoding="utf-8"
    )
    assert _evaluate(tiny_whisper, manifest, out, "--resume") == 2
    assert "manifest_sha256" in capsys.readouterr().err


def test_settings_are_recorded(tiny_whisper, manifest, tmp_path) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["schema"] == "eval_run_settings" and run["schema_version"] == 1
    assert run["dtype"] == "float32" and run["batch_size"] == 4 and len(run["manifest_sha256"]) == 64
    assert run["decoding"]["backend"] == "torch" and run["decoding"]["guard"] is True


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_unusable_out_is_a_clear_error_before_any_work(
    tiny_whisper, manifest, tmp_path, capsys, kind
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    out = blocker if kind == "file" else blocker / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 2
    err = capsys.readouterr().err
    assert f"--out {out}" in err and "Traceback" not in err
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_rows_without_duration_are_measured_from_the_audio(tiny_whisper, manifest, tmp_path) -> None:
    """``duration`` is optional in a manifest; it crashed the length sort (issue 21)."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    for row in rows[:2]:
        del row["duration"]
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    written = (out / "predictions.csv").read_text(encoding="utf-8")
    assert rows[0]["id"] in written and rows[1]["id"] in written
