"""asr report on small synthetic run folders: rows, tables, significance, plots, README block, stages."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.errors import ConfigError, DataError, ModelSourceError
from asr.report.alignment_view import aligned, confusions, counts, repetition_loop
from asr.report.html import write_run_reports
from asr.report.leaderboard import build, write_leaderboard
from asr.report.readme import BEGIN, END, replace_block, results_block
from asr.report.rows import collect
from asr.report.stages import Stage, run_stage
from asr.report.table import tex_escape, to_csv, to_markdown, to_tex
from asr.report.utterances import load_utterances
from tests.report_fixtures import HYPS_A, HYPS_B, write_data, write_eval

# Exact corpus numbers of the fixtures (37 reference characters after normalization).
CER_A, CER_B = 25 / 37, 4 / 37


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    data = write_data(tmp_path / "data")
    a = write_eval(tmp_path / "runs" / "a-zero", HYPS_A, data)
    b = write_eval(tmp_path / "runs" / "b-tuned", HYPS_B, data, model="whisper-base", checkpoint="/x/best")
    skipped = tmp_path / "runs" / "c-skipped"
    skipped.mkdir()
    stage = {"model": "whisper-small", "setting": "LoRA", "status": "skipped", "reason": "weights not found: x",
             "command": "asr finetune --config configs/whisper-small-lora.yaml"}  # fmt: skip
    (skipped / "stage.json").write_text(json.dumps(stage), encoding="utf-8")
    return {"data": data, "a": a, "b": b, "skipped": skipped, "root": tmp_path / "runs"}


def test_rows_metrics_and_significance(runs):
    board = build([runs["root"]], n_bootstrap=200)
    labels = [r.label for r in board.rows]
    assert labels == ["whisper-base zero-shot", "whisper-base fine-tuned", "whisper-small LoRA"]
    zero, tuned, skipped = board.rows
    assert zero.metrics.cer == pytest.approx(CER_A) and tuned.metrics.cer == pytest.approx(CER_B)
    assert zero.rate("insertions") == pytest.approx(10 / 37)
    assert board.baseline is zero and zero.significance == {"note": "baseline"}
    assert tuned.significance["delta"] == pytest.approx(CER_B - CER_A)
    assert tuned.significance["p_delta_ge_0"] == 0.0
    lo, hi = tuned.significance["delta_ci95"]
    assert lo < CER_B - CER_A < hi < 0
    assert skipped.status == "skipped" and skipped.significance is None
    assert zero.corpus.kind == "other" and "not CS-Mage" in zero.corpus.headline()


def test_baseline_choice_and_unknown_baseline(runs):
    board = build([runs["a"], runs["b"]], baseline="2", n_bootstrap=100)
    assert board.baseline.label == "whisper-base fine-tuned"
    assert board.rows[0].significance["delta"] == pytest.approx(CER_A - CER_B)
    with pytest.raises(DataError, match="no such row"):
        build([runs["a"]], baseline="nope")


def test_markdown_csv_and_tex(runs):
    board = build([runs["root"]], n_bootstrap=200)
    md = to_markdown(board.rows, board.baseline)
    assert "| whisper-base | zero-shot | 0.6757 |" in md
    assert "whisper-small | LoRA" not in md  # unreachable weights collapse into one line (issue 20)
    assert md.rstrip().endswith(
        "Not run here (weights not reachable from this machine: no Hub/ModelScope access): whisper-small (LoRA)."
    )
    assert "`asr evaluate --model whisper-base` | 0123456789ab, 2026-12-01 |" in md
    assert "Data: kaldi-layout corpus from corpus (not CS-Mage): train 10 / validation 3 / test 5 clips" in md
    rows = list(csv.DictReader(io.StringIO(to_csv(board.rows))))
    assert [r["status"] for r in rows] == ["ok", "ok", "skipped"]
    assert float(rows[1]["cer"]) == pytest.approx(CER_B)
    assert rows[0]["git_commit"] == "0123456789abcdef" and rows[2]["note"] == "weights not found: x"
    tex = to_tex(board.rows)
    assert "whisper-base & zero-shot & 67.57 &" in tex and r"\multicolumn{7}{l}{skipped" in tex
    assert tex_escape("50%_a&b") == r"50\%\_a\&b"


def test_utterances_join_manifest_and_alignment_matches_scorer(runs):
    utts = load_utterances(runs["a"], runs["data"] / "manifests" / "test.jsonl")
    assert [u["group"] for u in utts] == ["video 1", "video 1", "video 2", "video 2", "video 3"]
    assert utts[0]["duration"] == 1.5 and utts[0]["audio"].endswith("video_1_1.wav")
    for u in utts:  # the coloured characters add up to the scorer's counts
        assert counts(aligned(u["ref_norm"], u["hyp_norm"])) == {k: u[k] for k in ("sub", "del", "ins")}
    top = confusions([aligned(u["ref_norm"], u["hyp_norm"]) for u in utts])
    assert top["insertions"][0] == ("噻", 7)
    assert repetition_loop("爸爸明天带我去公园噻噻噻噻噻噻噻噻") == "噻"
    assert repetition_loop("好的好的好的好的好的好的") == "好的"
    assert repetition_loop("哈哈哈") is None


def test_cli_writes_tables_plots_html_and_readme(runs, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(
        f"# x\n\n## Results\n\nkept above\n\n{BEGIN}\nold\n{END}\n\nkept below\n", encoding="utf-8"
    )
    out = tmp_path / "report"
    code = main(["report", str(runs["root"]), "--out", str(out), "--html", "--bootstrap", "100",
                 "--readme", str(readme)])  # fmt: skip
    assert code == 0
    for name in ("results.md", "results.csv", "results.tex", "cer_bars.png", "cer_bars.svg",
                 "cer_by_duration.png", "cer_by_speaker.svg", "zero_shot_vs_finetuned.png"):  # fmt: skip
        assert (out / name).stat().st_size > 500, name
    assert (runs["a"] / "report.html").is_file() and (runs["b"] / "report.html").is_file()
    text = readme.read_text(encoding="utf-8")
    assert "kept above" in text and "kept below" in text and "old" not in text
    assert f"`asr report {runs['root']} --readme {readme}`" in text
    assert "| whisper-base | zero-shot | 0.6757 | [" in text and "| 11 | 4 | 10 |" in text
    assert "`asr evaluate --model whisper-base` | 0123456789ab, 2026-12-01 |" in text


def test_readme_block_needs_markers(tmp_path, runs):
    path = tmp_path / "README.md"
    path.write_text("# no markers\n", encoding="utf-8")
    with pytest.raises(DataError, match="markers"):
        replace_block(path, results_block(collect([runs["a"]]), "asr report x"))


def test_nothing_to_report(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no results"):
        write_leaderboard([tmp_path / "empty"], tmp_path / "out")


def _stage(tmp_path: Path, **settings) -> Stage:
    return Stage("zero-shot/m", tmp_path / "m", "m", "zero-shot", {"beam_size": 1, **settings}, "asr x")


def test_stages_resume_refuse_and_force(tmp_path):
    calls = []
    done = run_stage(_stage(tmp_path), lambda: calls.append(1))
    assert done.status == "done" and calls == [1]
    assert run_stage(_stage(tmp_path), lambda: calls.append(2)).status == "done" and calls == [1]  # skipped
    with pytest.raises(ConfigError, match=r"other settings \(beam_size\).*--force"):
        run_stage(_stage(tmp_path, beam_size=5), lambda: calls.append(3))
    assert run_stage(_stage(tmp_path, beam_size=5), lambda: calls.append(4), force=True).status == "done"
    assert calls == [1, 4]


def test_missing_weights_make_a_skipped_row(tmp_path):
    def missing() -> None:
        raise ModelSourceError("could not fetch openai/whisper-small\n  - more")

    stage = run_stage(_stage(tmp_path), missing)
    assert (
        stage.status == "skipped"
        and stage.reason == "weights not found: could not fetch openai/whisper-small"
    )
    (row,) = collect([tmp_path / "m"])
    assert row.status == "skipped" and row.reason == stage.reason and row.command == "asr x"


def test_finetune_run_with_its_zero_shot_decode(runs, tmp_path):
    """A fine-tuning run folder gives two rows: its base model's zero-shot decode and the tuned model."""
    import shutil

    from asr.report.rows import finetune_rows

    run = tmp_path / "finetune" / "whisper-base-lora"
    write_eval(run / "zero_shot", HYPS_A, runs["data"], zero_shot=True)
    write_eval(run / "test", HYPS_B, runs["data"], checkpoint=str(run / "best"), best_step=40)
    shutil.copy(run / "test" / "metrics.json", run / "metrics_test.json")
    zero, tuned = finetune_rows(run)
    assert (zero.setting, zero.run_dir, zero.eval_dir) == ("zero-shot", run, run / "zero_shot")
    assert (tuned.run_dir, tuned.eval_dir, tuned.note) == (run, run / "test", "best step 40")
    assert zero.metrics.cer == pytest.approx(CER_A) and tuned.metrics.cer == pytest.approx(CER_B)
    assert zero.command == "asr evaluate --model whisper-base"


def test_run_reports_beside_every_evaluation_of_a_finetuning_run(runs, tmp_path):
    """``asr finetune`` writes report.html in each validation step, test/ and zero_shot/ when done."""
    run = tmp_path / "run"
    folders = [
        run / "validation" / "step-20",
        run / "validation" / "step-40",
        run / "test",
        run / "zero_shot",
    ]
    for folder in folders:
        write_eval(folder, HYPS_A, runs["data"])
    (run / "validation" / "step-60").mkdir()  # killed before scoring: no metrics.json, no report
    assert write_run_reports(run) == [folder / "report.html" for folder in folders]
    assert not (run / "validation" / "step-60" / "report.html").exists()


def test_finetune_command_writes_the_run_reports(runs, tmp_path, monkeypatch, capsys):
    """``asr finetune`` (not the training library) writes the reports once the run has finished."""
    from types import SimpleNamespace

    from recipes import finetune as finetune_recipe

    run = tmp_path / "run"
    write_eval(run / "test", HYPS_B, runs["data"])
    test = SimpleNamespace(fine_tuned={"cer": 0.5}, zero_shot=None)
    summary = SimpleNamespace(output_dir=str(run), best_dir=str(run / "best"), best_step=40,
                              best_validation_cer=0.4, test=test)  # fmt: skip
    monkeypatch.setattr(finetune_recipe, "load_finetune_config", lambda config, overrides: None)
    monkeypatch.setattr(finetune_recipe, "finetune", lambda cfg, resume: summary)
    assert finetune_recipe.run(SimpleNamespace(config=None, overrides=[], resume=False)) == 0
    assert (run / "test" / "report.html").is_file() and '"best_step": 40' in capsys.readouterr().out


def test_skip_reasons_are_cut_at_part_boundaries() -> None:
    from asr.report.readme import short_reason

    long = (
        "weights not found: could not fetch iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch "
        "from ModelScope: NetworkError: [E1020] Connection failed: _DownloadHTTPSConnectionPool(host='modelscope.cn')"
    )
    assert short_reason(long) == (
        "weights not found: could not fetch iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch "
        "from ModelScope: NetworkError …"
    )
    assert short_reason("weights not found: x\nsecond line") == "weights not found: x"
    assert short_reason("one " * 50, 20) == "one one one one one …"
