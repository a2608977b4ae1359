"""Cards and reports name the corpus a run actually used, from the prepared data's own record."""

from __future__ import annotations

import json
from pathlib import Path

from asr.data.corpus_info import corpus_summary, find_corpus, identify, read_corpus
from asr.export.card import CardInfo, RunRecords, build_card
from asr.models.registry import get_spec
from tests.unit.export.test_card import METRICS, SUMMARY_NESTED, write_run

DEMO_REPORT = {
    "layout": "csmage",
    "protocol": "v2",
    "split_provenance": {"protocol": "v2", "source": "recomputed", "seed": 42},
    "counts": {"train": 80, "validation": 20, "test": 20, "all": 120},
}


def _prepared(root: Path, report: dict, demo: bool) -> Path:
    corpus = root / "corpus" / "cs-mage-demo"
    corpus.mkdir(parents=True)
    if demo:
        (corpus.parent / "manifest.json").write_text(json.dumps({"generator": "tools/make_demo.py"}))
    data = root / "data"
    (data / "reports").mkdir(parents=True)
    (data / "reports" / "data_validation.json").write_text(json.dumps({**report, "data_root": str(corpus)}))
    return data


def test_identify_demo_csmage_and_other(tmp_path):
    demo = read_corpus(_prepared(tmp_path / "a", DEMO_REPORT, demo=True))
    assert demo.kind == "demo"
    assert demo.headline() == (
        "cs-mage-asr demo corpus (synthetic espeak-ng speech, not CS-Mage): "
        "train 80 / validation 20 / test 20 clips, protocol v2 (recomputed from clip durations)"
    )
    full = {**DEMO_REPORT, "counts": {"train": 760, "validation": 160, "test": 165, "all": 1085},
            "split_provenance": {"source": "split_files"}}  # fmt: skip
    csmage = identify(full)
    assert csmage.is_csmage
    assert csmage.headline() == (
        "CS-Mage: train 760 / validation 160 / test 165 clips, protocol v2 (from the official split files)"
    )
    other = read_corpus(_prepared(tmp_path / "b", DEMO_REPORT, demo=False))  # 120 clips, not the demo
    assert other.kind == "other" and "(not CS-Mage)" in other.headline()
    assert read_corpus(tmp_path / "nothing") is None
    assert find_corpus(manifest=tmp_path / "nothing" / "manifests" / "test.jsonl").kind == "unknown"
    assert corpus_summary(tmp_path / "a" / "data")["headline"] == demo.headline()


def test_demo_run_card_says_it_is_not_csmage(tmp_path):
    data = _prepared(tmp_path, DEMO_REPORT, demo=True)
    summary = {**SUMMARY_NESTED, "config": {"data": str(data), "model": "whisper-base"}}
    metrics = {**METRICS, "n_utterances": 20}
    records = RunRecords.load(write_run(tmp_path / "run", summary=summary, metrics=metrics))
    assert records.corpus.kind == "demo"
    card = build_card(CardInfo(spec=get_spec("whisper-base"), lora=True), records)
    text = card.text
    assert "fine-tuned from `openai/whisper-base` on the cs-mage-asr demo corpus (synthetic espeak-ng" in text
    assert "**Not CS-Mage.**" in text and "train 80 / validation 20 / test 20 clips" in text
    assert "1,085" not in text and "on the CS-Mage corpus" not in text and "760/160/165" not in text
    assert "non-commercial" not in text and "Nothing in it comes from CS-Mage" in text
    assert card.data.datasets is None
    result = card.data.eval_results[0]
    assert result.dataset_type == "cs-mage-asr demo corpus"
    assert result.dataset_name.startswith("cs-mage-asr demo corpus (synthetic espeak-ng speech, not CS-Mage)")


def test_summary_record_of_the_corpus_wins(tmp_path):
    corpus = {"kind": "cs-mage", "name": "CS-Mage", "protocol": "v2", "split_source": "split_files",
              "counts": {"train": 760, "validation": 160, "test": 165}}  # fmt: skip
    records = RunRecords.load(write_run(tmp_path / "run", summary={**SUMMARY_NESTED, "corpus": corpus}))
    text = build_card(CardInfo(spec=get_spec("whisper-base")), records).text
    assert "as prepared for this run: train 760 / validation 160 / test 165 clips" in text
    assert "on the CS-Mage corpus" in text and "non-commercial research and education only" in text
