"""Model card of an export: Hub metadata parsed back with huggingface_hub, prose from the run records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard, metadata_load
from huggingface_hub.repocard_data import model_index_to_eval_results

from asr.export.card import CardInfo, RunRecords, build_card, protocol
from asr.models.registry import get_spec

# metrics_test.json as asr.train.run writes it (an EvalRecord: corpus numbers at the top level)
METRICS = {
    "cer": 0.23456,
    "cer_ci95": [0.2011, 0.2712],
    "errors": 168,
    "substitutions": 120,
    "deletions": 31,
    "insertions": 17,
    "ref_chars": 716,
    "ser": 0.81,
    "wer": 0.52,
    "n_utterances": 165,
    "model": "whisper-base",
    "decoding": {"beam_size": 1, "language": "zh", "guard": True},
    "normalization": {"t2s": False, "strip_tags": False},
    "provenance": {"command": "asr finetune --config configs/whisper-base-lora.yaml"},
}
CONFIG = {"model": "whisper-base", "method": "lora", "lora": {"r": 32, "alpha": 64}, "max_steps": 2000}
COMMAND = "asr finetune --config configs/whisper-base-lora.yaml data=runs/demo/data output_dir=runs/wb"
# summary.json as asr.train.run writes it (a FinetuneSummary): test results nested under "test".
SUMMARY_NESTED = {
    "model": "whisper-base",
    "family": "whisper",
    "method": "lora",
    "output_dir": "runs/wb",
    "best_dir": "runs/wb/best",
    "best_checkpoint": "runs/wb/checkpoint-1200",
    "best_step": 1200,
    "best_validation_cer": 0.251,
    "start_validation_cer": 0.9,
    "global_step": 2000,
    "max_steps": 2000,
    "stopped_early": False,
    "test": {
        "fine_tuned": {"cer": 0.23456, "cer_ci95": [0.2011, 0.2712]},
        "zero_shot": {"cer": 0.61, "cer_ci95": [0.57, 0.65]},
        "comparison": {
            "delta": -0.37544,
            "delta_ci95": [-0.41, -0.34],
            "p_delta_ge_0": 0.0,
            "n_bootstrap": 1000,
        },
    },
    "trainable_parameters": 1_179_648,
    "total_parameters": 73_773_568,
    "train_utterances": 760,
    "train_hours": 1.2,
    "dropped_longer_than_max_duration": 0,
    "validation_utterances": 160,
    "test_utterances": 165,
    "learning_rate": 0.001,
    "effective_batch_size": 16,
    "world_size": 1,
    "device": "cuda:0",
    "precision": "bf16",
    "decoding": {"beam_size": 1, "language": "zh", "task": "transcribe"},
    "eval_batch_size": 32,
    "train_runtime_seconds": 1800.0,
    "wall_seconds": 2100.5,
    "provenance": {"command": COMMAND},
    "config": CONFIG,
}
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def write_run(run: Path, summary: dict | None = SUMMARY_NESTED, metrics: dict | None = METRICS) -> Path:
    run.mkdir(parents=True, exist_ok=True)
    if metrics is not None:
        (run / "metrics_test.json").write_text(json.dumps(metrics), encoding="utf-8")
    if summary is not None:
        (run / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (run / "config.yaml").write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    (run / "train_log.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in ({"step": 100, "loss": 2.0}, {"step": 100, "eval_cer": 0.4}))
        + '{"step": 200, "eval_cer": 0.3',  # a line cut by a kill
        encoding="utf-8",
    )
    (run / "training_curve.png").write_bytes(PNG)
    return run


def save_card(tmp_path: Path, info: CardInfo, records: RunRecords) -> Path:
    path = tmp_path / "README.md"
    build_card(info, records).save(path)
    return path


def test_metadata_parses_back_with_huggingface_hub(tmp_path):
    records = RunRecords.load(write_run(tmp_path / "run"))
    info = CardInfo(spec=get_spec("whisper-base"), lora=True, repo_id="me/whisper-base-cs-mage")
    path = save_card(tmp_path, info, records)

    meta = metadata_load(path)
    assert meta["language"] == ["zh"]
    assert meta["license"] == "apache-2.0"
    assert meta["base_model"] == "openai/whisper-base"
    assert meta["datasets"] == ["CS-Mage"]
    assert meta["pipeline_tag"] == "automatic-speech-recognition"
    for tag in (
        "automatic-speech-recognition",
        "whisper",
        "lora",
        "cs-mage-asr",
        "changsha-dialect",
        "xiang",
    ):
        assert tag in meta["tags"]
    name, results = model_index_to_eval_results(meta["model-index"])
    assert name == "whisper-base-cs-mage"
    (result,) = results
    assert result.task_type == "automatic-speech-recognition"
    assert result.metric_type == "cer"
    assert result.metric_value == pytest.approx(23.46)  # a percentage, as the metric name says
    assert result.metric_name == "Test CER (%)"
    assert result.dataset_type == "CS-Mage"
    assert result.dataset_split == "test"
    assert result.dataset_config == "CS-Mage v2 split (760/160/165), CS-Mage normalization"

    card = ModelCard.load(path)
    assert card.data.eval_results[0].metric_value == pytest.approx(23.46)
    assert card.data.to_dict()["base_model"] == "openai/whisper-base"


def test_prose_reports_results_training_and_terms(tmp_path):
    records = RunRecords.load(write_run(tmp_path / "run"))
    info = CardInfo(
        spec=get_spec("whisper-base"), lora=True, repo_id="me/wb", export_command="asr export --x"
    )
    text = ModelCard.load(save_card(tmp_path, info, records)).text

    assert "23.46%" in text and "[20.11, 27.12]" in text  # test CER and its CI
    assert "120/31/17" in text
    assert "61.00%" in text and "[57.00, 65.00]" in text  # zero-shot
    assert "-37.54 points" in text and "[-41.00, -34.00]" in text  # paired bootstrap delta
    assert COMMAND in text
    assert "`lora.r`" in text and "`effective_batch_size`" in text  # hyperparameters table
    assert "![training loss and validation CER](training_curve.png)" in text
    assert "| 100 | 40.00% |" in text  # validation points from train_log.jsonl (cut line skipped)
    assert 'generate_kwargs={"language": "zh", "task": "transcribe"}' in text
    assert 'pipeline("automatic-speech-recognition", model="me/wb")' in text
    assert "non-commercial research and education only" in text
    assert "asr export --x" in text
    assert "not available" not in text


def test_missing_records_say_not_available(tmp_path):
    empty = tmp_path / "run"
    empty.mkdir()
    card = build_card(CardInfo(spec=get_spec("whisper-small")), RunRecords.load(empty))
    path = tmp_path / "README.md"
    card.save(path)
    meta = metadata_load(path)
    assert "model-index" not in meta  # no test metrics, no eval results
    assert meta["license"] == "apache-2.0" and meta["base_model"] == "openai/whisper-small"
    text = ModelCard.load(path).text
    assert "Test metrics: not available" in text
    assert "Zero-shot comparison: not available" in text
    assert "Hyperparameters: not available" in text
    assert "Validation curve: not available" in text
    assert "Command:\n\nnot available." in text


def test_no_run_dir_at_all(tmp_path):
    card = build_card(CardInfo(spec=get_spec("whisper-tiny")), RunRecords.load(None))
    assert "Test metrics: not available" in card.text


def test_summary_in_another_layout_is_left_out(tmp_path):
    flat = {"zero_shot": {"cer": 0.5}, "finetuned": {"cer": 0.3}, "best_step": 300}  # nothing writes this
    records = RunRecords.load(write_run(tmp_path / "run", summary=flat))
    assert records.summary is None and records.metrics is not None
    text = build_card(CardInfo(spec=get_spec("whisper-base")), records).text
    assert "summary.json: unreadable" in text and "missing model, family" in text
    assert str(tmp_path) not in text  # no local paths in a published card
    assert "Zero-shot comparison: not available" in text
    assert "23.46%" in text  # metrics_test.json still used
    assert "`lora.r`" in text  # hyperparameters from config.yaml


def test_unreadable_records_are_reported_not_fatal(tmp_path):
    run = write_run(tmp_path / "run")
    (run / "metrics_test.json").write_text("{not json", encoding="utf-8")
    records = RunRecords.load(run)
    assert records.metrics is None
    card = build_card(CardInfo(spec=get_spec("whisper-base")), records)
    assert "metrics_test.json: unreadable" in card.text
    assert "Test metrics: not available" in card.text
    assert "61.00%" in card.text  # summary.json still used


def test_protocol_label_is_honest_about_other_splits():
    assert protocol({"n_utterances": 165, "normalization": {"t2s": False}}) == (
        "CS-Mage v2 split (760/160/165), CS-Mage normalization",
        True,
    )
    label, is_v2 = protocol({"n_utterances": 12, "normalization": {"t2s": True, "strip_tags": False}})
    assert not is_v2
    assert "12 utterances" in label and "not the 165-clip v2 test split" in label and "+ t2s" in label


def test_funasr_and_ctc_metadata(tmp_path):
    records = RunRecords.load(write_run(tmp_path / "run"))
    path = save_card(tmp_path, CardInfo(spec=get_spec("paraformer-large")), records)
    meta = metadata_load(path)
    assert meta["license"] == "other"
    assert meta["license_name"] == "funasr-model-license" and meta["license_link"].startswith("https://")
    assert "funasr" in meta["tags"] and meta["library_name"] == "funasr"
    assert "from funasr import AutoModel" in ModelCard.load(path).text

    ctc = build_card(CardInfo(spec=get_spec("xlsr-53-zh")), records)
    assert "wav2vec2" in ctc.data.tags and ctc.data.license == "apache-2.0"
    unknown = build_card(
        CardInfo(spec=get_spec("whisper-base").__class__(name="mine", family="whisper")), records
    )
    assert unknown.data.license == "other" and unknown.data.base_model is None


def test_adapter_card_shows_peft_usage(tmp_path):
    records = RunRecords.load(write_run(tmp_path / "run"))
    info = CardInfo(
        spec=get_spec("whisper-base"), mode="adapter", lora=True, adapter_base="openai/whisper-base"
    )
    card = build_card(info, records)
    assert card.data.library_name == "peft"
    assert 'WhisperForConditionalGeneration.from_pretrained("openai/whisper-base")' in card.text
    assert "PeftModel.from_pretrained(base," in card.text
