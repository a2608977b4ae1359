"""``asr report`` over runs that are still going or were killed: every row says what it is (issue 21).

A fine-tuning run in progress listed its ``validation/step-N`` decodes of partly trained weights
as zero-shot test rows; a run killed after ``metrics_test.json`` but before ``summary.json`` was a
normal fine-tuned row; a killed evaluation (predictions, no metrics) was silently left out.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import yaml

from asr.cli import main
from asr.report.rows import collect
from tests.report_fixtures import HYPS_A, HYPS_B, write_data, write_eval


def _training_run(run: Path, data: Path, steps: tuple[int, ...]) -> Path:
    """A fine-tuning run folder as ``asr finetune`` leaves it while training."""
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        yaml.safe_dump({"model": "whisper-base", "method": "lora", "data": str(data)})
    )
    (run / "train_log.jsonl").write_text(json.dumps({"step": 2, "loss": 1.0}) + "\n", encoding="utf-8")
    write_eval(run / "zero_shot", HYPS_A, data, zero_shot=True)
    for step in steps:
        (run / f"checkpoint-{step}").mkdir()
        write_eval(run / "validation" / f"step-{step}", HYPS_B, data)
    return run


def test_a_run_in_progress_is_unfinished_and_its_validation_decodes_are_not_test_rows(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    run = _training_run(tmp_path / "runs" / "wb-lora", data, steps=(2, 4))
    rows = collect([tmp_path / "runs"])
    assert [(r.model, r.setting, r.status) for r in rows] == [
        ("whisper-base", "zero-shot", "ok"),
        ("whisper-base", "LoRA", "unfinished"),
    ]
    assert "last checkpoint at step 4" in rows[1].reason and "--resume" in rows[1].reason
    assert rows[0].eval_dir == run / "zero_shot"


def test_a_run_killed_after_its_test_decode_is_unfinished(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data")
    run = _training_run(tmp_path / "runs" / "wb-lora", data, steps=(2,))
    write_eval(run / "test", HYPS_B, data, checkpoint=str(run / ".best.staging"))
    shutil.copyfile(run / "test" / "metrics.json", run / "metrics_test.json")
    rows = collect([run])
    assert [r.status for r in rows] == ["ok", "unfinished"]
    assert "metrics_test.json written but not summary.json" in rows[1].reason


def test_a_killed_evaluation_beside_finished_ones_is_listed(tmp_path: Path, capsys) -> None:
    data = write_data(tmp_path / "data")
    write_eval(tmp_path / "runs" / "a", HYPS_A, data)
    killed = write_eval(tmp_path / "runs" / "b", HYPS_B, data)
    (killed / "metrics.json").unlink()
    settings = {
        "model": "whisper-small",
        "manifest": str(data / "manifests" / "test.jsonl"),
        "limit": None,
        "decoding": {},
    }
    (killed / "run.json").write_text(json.dumps(settings), encoding="utf-8")
    assert main(["report", str(tmp_path / "runs"), "--out", str(tmp_path / "board"), "--no-plots"]) == 0
    md = (tmp_path / "board" / "results.md").read_text(encoding="utf-8")
    assert "| unfinished: evaluation not finished (5 utterances decoded, no metrics.json)" in md


def test_no_bootstrap_gives_the_difference_without_an_interval(tmp_path: Path, capsys) -> None:
    """``--bootstrap 0`` (allowed: "0: no CI") over two runs crashed formatting the missing interval."""
    data = write_data(tmp_path / "data", clips=False)
    write_eval(tmp_path / "runs" / "a", HYPS_A, data)
    write_eval(tmp_path / "runs" / "b", HYPS_B, data, checkpoint="/x/best")
    out = tmp_path / "board"
    assert main(["report", str(tmp_path / "runs"), "--out", str(out), "--bootstrap", "0", "--no-plots"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    row = next(
        x for x in (out / "results.md").read_text(encoding="utf-8").splitlines() if "| fine-tuned |" in x
    )
    assert "| 5 | -0.5676 | `asr evaluate" in row, row  # the difference, no interval, no p
