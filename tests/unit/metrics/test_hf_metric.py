"""The ``evaluate`` metric module (``asr.metrics.hf_metric``) against ``asr score``, digit for digit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.csmage import read_fulldata_pkl
from asr.metrics import hf_metric
from asr.metrics.hf import HF_CER_PATH

pytest.importorskip("evaluate")  # the hf extra

DEMO_PKL = Path(__file__).resolve().parents[3] / "demo" / "cs-mage-demo" / "CS-Mage_fulldata.pkl"


def _predict(index: int, text: str) -> str:
    """A deterministic 'model output' for each demo reference: every kind of edit, markup, variants."""
    kind = index % 6
    if kind == 0:
        return text[1:]  # a deletion
    if kind == 1:
        return text[:2] + "咯" + text[3:]  # a substitution
    if kind == 2:
        return text + "啊啊"  # insertions
    if kind == 3:
        return f"<|zh|>{text}"  # tag letters survive unless strip_tags
    if kind == 4:
        return text.replace("说", "說").replace("个", "個") + "ＯＫ"  # traditional, full-width
    return text


@pytest.fixture(scope="module")
def demo_predictions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    refs = [entry.text for entry in read_fulldata_pkl(DEMO_PKL)]
    ids = [entry.id for entry in read_fulldata_pkl(DEMO_PKL)]
    preds = [_predict(i, text) for i, text in enumerate(refs)]
    path = tmp_path_factory.mktemp("demo-preds") / "predictions.jsonl"
    rows = ({"id": i, "reference": r, "prediction": p} for i, r, p in zip(ids, refs, preds, strict=True))
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path, refs, preds


@pytest.mark.parametrize("options", [[], ["--t2s", "--strip-tags"]], ids=["protocol", "t2s-strip-tags"])
def test_metric_matches_asr_score_to_the_last_digit(demo_predictions, tmp_path, options, capsys):
    path, refs, preds = demo_predictions
    out = tmp_path / "metrics.json"
    assert main(["score", "--predictions", str(path), "--bootstrap", "0", "--out", str(out), *options]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = json.loads(out.read_text(encoding="utf-8"))["cer"]

    flags = {"t2s": "--t2s" in options, "strip_tags": "--strip-tags" in options}
    got = hf_metric().compute(predictions=preds, references=refs, **flags)

    assert len(refs) == 120 and 0.02 < expected < 0.5  # the demo, with errors of every kind
    assert got == {"cer": expected}
    assert round(got["cer"], 6) == printed["cer"]


def test_metric_options_change_the_result(demo_predictions):
    _, refs, preds = demo_predictions
    metric = hf_metric()
    plain = metric.compute(predictions=preds, references=refs)["cer"]
    cleaned = metric.compute(predictions=preds, references=refs, t2s=True, strip_tags=True)["cer"]
    assert cleaned < plain


def test_metric_module_ships_in_the_package():
    from setuptools import find_packages

    root = Path(__file__).resolve().parents[3]
    assert (HF_CER_PATH / "hf_cer.py").is_file()
    assert "asr.metrics.hf_cer" in find_packages(str(root), include=["asr*"])
