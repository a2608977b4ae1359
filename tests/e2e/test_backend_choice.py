"""``--backend auto`` (the default of ``asr evaluate``): what it picks, what ``run.json`` records,
and resuming a run across backends. Tiny random Whisper, 2 demo clips per run (about 2-4 s each)."""

from __future__ import annotations

import csv
import json
import logging
import sys
from pathlib import Path

import pytest

from asr.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


def _evaluate(model: Path, manifest: Path, out: Path, *extra: str) -> int:
    args = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    return main([*args, "--limit", "2", "--no-progress", "--bootstrap", "0", *extra])


def _decoding(run: Path) -> dict:
    return json.loads((run / "run.json").read_text(encoding="utf-8"))["decoding"]


def _predictions(run: Path) -> dict[str, str]:
    with (run / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return {row["id"]: row["prediction_raw"] for row in csv.DictReader(f)}


@pytest.fixture
def no_ct2(monkeypatch: pytest.MonkeyPatch) -> None:
    """ctranslate2 unimportable, as without the ``ct2`` extra."""
    monkeypatch.setitem(sys.modules, "ctranslate2", None)


@pytest.fixture
def manifest(demo_data: Path) -> Path:
    return demo_data / "manifests" / "test.jsonl"


def test_auto_is_ct2_int8_on_cpu_and_says_so(
    tiny_whisper: Path, manifest: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("ctranslate2")
    with caplog.at_level(logging.INFO, logger="asr.inference"):
        assert _evaluate(tiny_whisper, manifest, tmp_path / "run") == 0
    decoding = _decoding(tmp_path / "run")
    assert decoding["backend"] == "ct2" and decoding["compute_type"] == "int8"
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("decoding backend")]
    assert lines == ["decoding backend: ct2 int8 (--backend auto)"]


def test_auto_without_ctranslate2_is_the_torch_path(
    tiny_whisper: Path, manifest: Path, tmp_path: Path, no_ct2: None
) -> None:
    assert _evaluate(tiny_whisper, manifest, tmp_path / "auto") == 0
    assert _evaluate(tiny_whisper, manifest, tmp_path / "torch", "--backend", "torch") == 0
    # the torch path records exactly what it did before auto existed: no compute type
    assert _decoding(tmp_path / "auto") == _decoding(tmp_path / "torch")
    assert _decoding(tmp_path / "torch")["backend"] == "torch"
    assert "compute_type" not in _decoding(tmp_path / "torch")
    assert _predictions(tmp_path / "auto") == _predictions(tmp_path / "torch")


def test_resume_with_auto_keeps_the_backend_the_run_started_with(
    tiny_whisper: Path, manifest: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("ctranslate2")
    run = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, run, "--backend", "torch") == 0  # as before auto existed
    before = _predictions(run)
    with caplog.at_level(logging.INFO, logger="asr.inference"):
        assert _evaluate(tiny_whisper, manifest, run, "--resume") == 0
    assert "decoding backend: torch float32 (--backend auto: the run's own, from run.json)" in caplog.messages
    assert _decoding(run)["backend"] == "torch" and _predictions(run) == before
    # an explicit other backend is refused, naming what differs
    assert _evaluate(tiny_whisper, manifest, run, "--resume", "--backend", "ct2") == 2


def test_resume_of_a_ct2_run_without_ctranslate2_is_refused(
    tiny_whisper: Path,
    manifest: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("ctranslate2")
    run = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, run) == 0
    monkeypatch.setitem(sys.modules, "ctranslate2", None)
    capsys.readouterr()
    assert _evaluate(tiny_whisper, manifest, run, "--resume") == 2
    err = capsys.readouterr().err
    assert "different settings" in err and "decoding.backend" in err
    assert _decoding(run)["backend"] == "ct2"


def test_zero_shot_passes_the_backend_through(tiny_whisper: Path, manifest: Path, tmp_path: Path) -> None:
    pytest.importorskip("ctranslate2")
    common = ["--manifest", str(manifest), "--models", str(tiny_whisper), "--limit", "2", "--no-progress"]
    assert main(["zero-shot", *common, "--out", str(tmp_path / "auto")]) == 0
    assert main(["zero-shot", *common, "--out", str(tmp_path / "torch"), "--backend", "torch"]) == 0
    assert _decoding(tmp_path / "auto" / tiny_whisper.name)["backend"] == "ct2"
    assert _decoding(tmp_path / "torch" / tiny_whisper.name)["backend"] == "torch"
