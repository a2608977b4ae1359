"""`asr score` through the CLI entry point."""

import csv
import json

import pytest

from asr.cli import main


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


ROWS = [
    {
        "id": "a",
        "reference": "我是长沙人。",
        "prediction": "我事长沙人啊",
        "duration": 2.0,
        "decode_seconds": 0.2,
    },
    {"id": "b", "reference": "長沙話", "prediction": "<|zh|>长沙话", "duration": 3.0, "decode_seconds": 0.3},
    {"id": "c", "reference": "谢谢大家", "prediction": "谢谢大家", "duration": 1.0, "decode_seconds": 0.1},
]


def test_score_writes_default_files_and_prints_summary(tmp_path, capsys):
    preds = _write_jsonl(tmp_path / "preds.jsonl", ROWS)
    assert main(["score", "--predictions", str(preds), "--bootstrap", "50"]) == 0
    summary = json.loads(capsys.readouterr().out.strip())
    assert set(summary) == {"cer", "sub", "del", "ins", "ser", "wer", "ci", "n"}
    # a: S1 I1 on 5 chars; b: 長,話 differ and "zh" inserted (protocol keeps tag letters) on 3; c: 0 on 4
    assert (summary["sub"], summary["del"], summary["ins"]) == (3, 0, 3)
    assert summary["cer"] == pytest.approx(round(6 / 12, 6))
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["rtf"] == pytest.approx(0.1)
    assert metrics["n_bootstrap"] == 50
    assert metrics["normalization"] == {"t2s": False, "strip_tags": False}
    with open(tmp_path / "per_utterance.csv", encoding="utf-8", newline="") as f:
        per_utt = list(csv.DictReader(f))
    assert [r["id"] for r in per_utt] == ["a", "b", "c"]
    assert per_utt[0]["alignment"] == "S1:是>事 I5:啊"


def test_score_with_options_and_explicit_paths(tmp_path, capsys):
    preds = _write_jsonl(tmp_path / "preds.jsonl", ROWS)
    out, per_utt = tmp_path / "res" / "m.json", tmp_path / "other" / "u.csv"
    args = ["score", "--predictions", str(preds), "--t2s", "--strip-tags", "--bootstrap", "0"]
    assert main([*args, "--out", str(out), "--per-utterance", str(per_utt)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["cer"] == pytest.approx(round(2 / 12, 6))
    assert summary["ci"] is None
    assert json.loads(out.read_text(encoding="utf-8"))["normalization"] == {"t2s": True, "strip_tags": True}
    assert per_utt.is_file()
    assert not (tmp_path / "metrics.json").exists()


def test_score_csv_with_authors_columns_and_seed(tmp_path, capsys):
    preds = tmp_path / "p.csv"
    lines = ["sample_id,reference_text,prediction"] + [f"u{k},长沙话好咯{k},长沙化好咯{k}" for k in range(20)]
    preds.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["score", "--predictions", str(preds), "--seed", "3"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert main(["score", "--predictions", str(preds), "--seed", "3"]) == 0
    assert json.loads(capsys.readouterr().out) == first
    assert json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))["seed"] == 3


def test_compare_two_files(tmp_path, capsys):
    refs = [f"长沙话第{k}句好咯" for k in range(40)]
    a = _write_jsonl(
        tmp_path / "a.jsonl",
        [{"id": f"u{k}", "reference": r, "prediction": r[2:]} for k, r in enumerate(refs)],
    )
    b = _write_jsonl(
        tmp_path / "b.jsonl", [{"id": f"u{k}", "reference": r, "prediction": r} for k, r in enumerate(refs)]
    )
    out = tmp_path / "cmp.json"
    assert main(["score", "--compare", str(a), str(b), "--bootstrap", "200", "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["delta"] < 0
    assert printed["p_delta_ge_0"] == 0.0
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["a"] == str(a)
    assert report["metrics_b"]["cer"] == 0.0


def test_compare_with_different_ids_fails_clearly(tmp_path, capsys):
    a = _write_jsonl(tmp_path / "a.jsonl", ROWS)
    b = _write_jsonl(tmp_path / "b.jsonl", ROWS[:2])
    assert main(["score", "--compare", str(a), str(b)]) == 2
    err = capsys.readouterr().err
    assert "error: cannot compare" in err
    assert f"1 ids only in {a} (e.g. c)" in err


def test_bad_prediction_file_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\na,长沙\n", encoding="utf-8")
    assert main(["score", "--predictions", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "bad.csv" in err
    assert "missing column" in err


def test_argument_errors(tmp_path):
    preds = _write_jsonl(tmp_path / "p.jsonl", ROWS)
    with pytest.raises(SystemExit):
        main(["score", "--predictions", str(preds), "--bootstrap", "-1"])
    with pytest.raises(SystemExit):
        main(["score"])
    assert main(["score", "--compare", str(preds), str(preds), "--per-utterance", "x.csv"]) == 2
