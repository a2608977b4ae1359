"""``asr score`` and prediction files: bad paths, long fields, missing values, exact line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.errors import DataError
from asr.metrics import read_predictions


def _csv(path: Path, body: str) -> Path:
    path.write_text("id,reference,prediction\n" + body, encoding="utf-8")
    return path


def test_a_prediction_longer_than_the_csv_field_limit_is_scored(tmp_path: Path) -> None:
    # a runaway decode of 200k characters is a valid (very wrong) prediction, not a malformed file
    rows = read_predictions(_csv(tmp_path / "p.csv", "a,长沙," + "长" * 200_000 + "\nb,话,话\n"))
    assert [len(r["prediction"]) for r in rows] == [200_000, 1]


def test_errors_name_the_line_the_bad_row_starts_on(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"p\.csv, line 3: 2 fields"):
        read_predictions(_csv(tmp_path / "p.csv", "a,长沙,长沙\nb,长沙\n"))
    with pytest.raises(DataError, match=r"p\.csv, line 4: 'duration' is not a number"):
        path = tmp_path / "p.csv"
        path.write_text('id,reference,prediction,duration\na,"长\n沙",长沙,1\nb,x,y,abc\n', encoding="utf-8")
        read_predictions(path)


def test_a_nan_prediction_is_empty_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = read_predictions(_csv(tmp_path / "p.csv", "a,长沙,NaN\nb,话,话\n"))
    assert rows[0]["prediction"] == ""
    assert "1 predictions are a missing value (NaN)" in caplog.text and "lines 2" in caplog.text


def test_a_nan_reference_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"line 2: the reference is a missing value"):
        read_predictions(_csv(tmp_path / "p.csv", "a,nan,长沙\n"))


@pytest.mark.parametrize("kind", ["folder", "under_a_file"])
def test_unusable_out_is_a_clear_error_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str
) -> None:
    preds = _csv(tmp_path / "p.csv", "a,长沙,长沙\n")
    blocker = tmp_path / "blocker"
    if kind == "folder":
        blocker.mkdir()
        out = blocker
    else:
        blocker.write_text("x", encoding="utf-8")
        out = blocker / "metrics.json"
    assert main(["score", "--predictions", str(preds), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--out" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "p.csv"]


def test_a_failed_write_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    import asr.io

    preds = _csv(tmp_path / "p.csv", "a,长沙,长沙\n")
    out = tmp_path / "out"

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(asr.io.json, "dumps", full_disk)
    assert main(["score", "--predictions", str(preds), "--out", str(out / "metrics.json")]) == 2
    err = capsys.readouterr().err  # one line at the command boundary (asr.disk), no traceback
    assert f"error: {out / 'metrics.json'}: no space left on device" in err and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_score_writes_a_typed_record(tmp_path: Path) -> None:
    preds = _csv(tmp_path / "p.csv", "a,长沙,长沙\n")
    assert main(["score", "--predictions", str(preds), "--bootstrap", "0"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text(encoding="utf-8"))
    assert (metrics["schema"], metrics["schema_version"], metrics["cer"]) == ("eval_metrics", 1, 0.0)
