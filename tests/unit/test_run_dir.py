"""The run folder's one definition (asr.run_dir) and predictions.csv's one writer/reader (asr.predictions)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from asr.errors import DataError
from asr.predictions import COLUMNS, PredictionWriter, read_done, read_rows, rewrite_in_order
from asr.run_dir import RunDir
from asr.run_records import CorpusMetrics, EvalRecord

METRICS = CorpusMetrics(cer=0.25, errors=1, substitutions=1, deletions=0, insertions=0, ref_chars=4,
                        n_utterances=1, ser=1.0, wer=1.0)  # fmt: skip


def test_a_partial_finetune_run_reads_what_it_holds(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    for step in (5, 20, 10):
        run.checkpoint(step).mkdir()
    (tmp_path / "checkpoint-x").mkdir()  # not a checkpoint
    run.config_file.write_text("model: whisper-base\nmethod: lora\n", encoding="utf-8")
    run.train_log_file.write_text(
        '{"step": 5, "loss": 2.0}\n{"step": 10, "lo', encoding="utf-8"
    )  # torn by a kill
    assert [p.name for p in run.checkpoints()] == ["checkpoint-20", "checkpoint-10", "checkpoint-5"]
    assert run.config == {"model": "whisper-base", "method": "lora"}
    assert run.train_log == [{"step": 5, "loss": 2.0}]
    assert (run.summary, run.test_metrics, run.metrics, run.run_settings, run.curve) == (None,) * 5
    assert not run.is_finetune and not run.is_evaluation and run.problems == []


def test_a_finished_run_and_its_evaluations(tmp_path: Path) -> None:
    run = RunDir(tmp_path)
    EvalRecord(metrics=METRICS, model="whisper-base", best_step=40).save(run.test_metrics_file)
    run.zero_shot.path.mkdir()
    EvalRecord(metrics=METRICS, zero_shot=True).save(run.zero_shot.metrics_file)
    assert run.is_finetune and run.test_metrics.best_step == 40 and run.test_metrics.metrics == METRICS
    assert run.zero_shot.is_evaluation and run.zero_shot.metrics.zero_shot is True
    assert run.validation(20).path == tmp_path / "validation" / "step-20"


def test_an_unreadable_file_is_an_error_unless_it_can_be_left_out(tmp_path: Path, caplog) -> None:
    (tmp_path / "summary.json").write_text(json.dumps({"schema": "finetune_summary"}), encoding="utf-8")
    (tmp_path / "config.yaml").write_text("model: [unclosed\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"summary\.json: not a finetune_summary record \(missing model"):
        _ = RunDir(tmp_path).summary
    with pytest.raises(DataError, match=r"config\.yaml: unreadable"):
        _ = RunDir(tmp_path).config
    run = RunDir(tmp_path, skip_unreadable_for="the model card")
    with caplog.at_level(logging.WARNING, logger="asr.run_dir"):
        assert run.summary is None and run.config is None
    assert [p.split(":")[0] for p in run.problems] == ["summary.json", "config.yaml"]
    assert str(tmp_path) not in " ".join(run.problems) and "left out of the model card" in caplog.text


ROWS = [
    {"id": "b", "reference": "长沙, \"话\"", "prediction": "长沙\n话", "prediction_raw": " 长沙\n话",
     "duration": 2.5, "decode_seconds": 0.123456},
    {"id": "a", "reference": "好", "prediction": "", "prediction_raw": "", "duration": 1.0, "decode_seconds": 0.0},
]  # fmt: skip
# The file's bytes as every earlier version wrote them (csv's defaults: \r\n, minimal quoting).
EXPECTED = (
    'id,reference,prediction,prediction_raw,duration,decode_seconds\r\n'
    'a,好,,,1.0,0.0\r\n'
    'b,"长沙, ""话""","长沙\n话"," 长沙\n话",2.5,0.123456\r\n'
).encode()  # fmt: skip


def test_predictions_csv_is_written_resumed_and_read_in_one_format(tmp_path: Path) -> None:
    path = tmp_path / "predictions.csv"
    with PredictionWriter(path) as writer:
        writer.write(ROWS[:1])
    with PredictionWriter(path) as writer:  # a resumed run appends, without a second header
        writer.write(ROWS[1:])
    done = read_done(path)
    assert list(done) == ["b", "a"] and list(done["b"]) == COLUMNS
    rewrite_in_order(path, [done["a"], done["b"]])
    assert path.read_bytes() == EXPECTED
    assert [r["id"] for r in read_rows(path)] == ["a", "b"] and read_rows(path)[1]["prediction"] == "长沙\n话"
    assert read_rows(tmp_path / "none.csv") == []
