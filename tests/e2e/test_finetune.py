"""The fine-tuning engine end to end on tiny random models and demo clips (CPU).

Covers: overfitting a few clips (loss and CER fall) with every output written, resume after a
kill matching an uninterrupted run, a 2-process gloo run under torchrun, each error raised
before any compute, and short runs of the CTC and funasr families.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from asr.cli import main
from asr.data.manifest import read_manifest, write_manifest
from asr.errors import ConfigError, DataError, ModelSourceError
from asr.models import load_model
from asr.run_records import FinetuneSummary
from asr.train.finetune_config import load_finetune_config
from asr.train.recipe import finetune
from tests.train_callbacks import KillAfterSave

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

REPO = Path(__file__).resolve().parents[2]


def _cfg(model: Path, data: Path, out: Path, *overrides: str):
    base = [
        f"model={model}",
        f"data={data}",
        f"output_dir={out}",
        "num_workers=0",
        "bootstrap=0",
        "zero_shot=false",
        "warmup_ratio=0",
        "logging_steps=1",
        "patience=null",
    ]
    return load_finetune_config(None, [*base, *overrides])


def _log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]


def _losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in _log(out) if "loss" in r}


def test_overfit_few_clips_writes_every_output(tiny_whisper: Path, few_clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _cfg(
        tiny_whisper,
        few_clips,
        out,
        "method=decoder",
        "max_steps=40",
        "eval_steps=20",
        "eval_on_start=true",
        "batch_size=4",
        "learning_rate=3e-3",
        "zero_shot=true",
        "bootstrap=50",
    )
    summary = finetune(cfg)

    losses = _losses(out)
    assert losses[40] < 0.5 * losses[1], losses
    records = _log(out)
    cer = {r["step"]: r["eval_cer"] for r in records if "eval_cer" in r}
    assert sorted(cer) == [0, 20, 40]
    assert min(cer[20], cer[40]) < cer[0], cer
    assert all("epoch" in r and "step" in r for r in records)

    for name in ("config.yaml", "train_log.jsonl", "metrics_test.json", "summary.json", "checkpoint-40"):
        assert (out / name).exists(), name
    assert (out / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((out / "tb").glob("events.out.tfevents.*"))
    for step in (0, 20, 40):
        assert (out / "validation" / f"step-{step}" / "predictions.csv").is_file()
    resolved = load_finetune_config(out / "config.yaml")
    assert resolved.learning_rate == pytest.approx(3e-3) and resolved.batch_size == 4

    on_disk = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert (on_disk["schema"], on_disk["schema_version"]) == ("finetune_summary", 1)
    assert FinetuneSummary.load(out / "summary.json").test.fine_tuned == summary.test.fine_tuned
    assert on_disk["best_step"] == summary.best_step in (20, 40)
    assert on_disk["best_validation_cer"] == cer[summary.best_step]
    assert on_disk["start_validation_cer"] == cer[0]
    assert on_disk["trainable_parameters"] < on_disk["total_parameters"]
    test = on_disk["test"]
    metrics_test = json.loads((out / "metrics_test.json").read_text(encoding="utf-8"))
    assert test["fine_tuned"]["cer"] == metrics_test["cer"]
    assert (out / "zero_shot" / "metrics.json").is_file()
    assert test["comparison"]["delta"] == pytest.approx(test["fine_tuned"]["cer"] - test["zero_shot"]["cer"])
    assert test["fine_tuned"]["cer"] < test["zero_shot"]["cer"]  # test = the training clips here
    assert on_disk["provenance"]["toolkit"] == "cs-mage-asr"

    best = load_model(out / "best", device="cpu")
    assert best.spec.name == "whisper-tiny"
    # `asr evaluate` on best/ reproduces the validation CER of the best step
    manifest = few_clips / "manifests" / "validation.jsonl"
    argv = [
        "evaluate",
        "--model",
        str(out / "best"),
        "--manifest",
        str(manifest),
        "--out",
        str(tmp_path / "re-eval"),
        "--backend",
        "torch",  # the engine validation decodes with
    ]
    assert (
        main([*argv, "--batch-size", str(resolved.eval_batch_size), "--bootstrap", "0", "--no-progress"]) == 0
    )
    again = json.loads((tmp_path / "re-eval" / "metrics.json").read_text(encoding="utf-8"))
    assert again["cer"] == on_disk["best_validation_cer"]


def test_short_context_decoder_training_with_cached_cross_kv(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path
) -> None:
    """method=decoder at audio_context=auto with freeze_cross_kv: the loss falls, the cross-attention
    key/value weights saved in best/ are the base's, and the checkpoint records its context."""
    out = tmp_path / "run"
    cfg = _cfg(
        tiny_whisper, few_clips, out, "method=decoder", "model_options.audio_context=auto",
        "model_options.freeze_cross_kv=true",
        "max_steps=40", "eval_steps=40", "batch_size=4", "learning_rate=3e-3", "zero_shot=false", "bootstrap=0",
    )  # fmt: skip
    finetune(cfg)
    losses = _losses(out)
    assert losses[40] < 0.5 * losses[1], losses
    base, best = load_model(tiny_whisper, device="cpu"), load_model(out / "best", device="cpu")
    assert best.audio_context == "auto"
    recorded = yaml.safe_load((out / "config.yaml").read_text(encoding="utf-8"))["model_options"]
    assert recorded == {"audio_context": "auto", "consistency_weight": 0.0, "freeze_cross_kv": True}
    before, after = base.module.state_dict(), best.module.state_dict()
    kv = [k for k in before if ".encoder_attn.k_proj." in k or ".encoder_attn.v_proj." in k]
    q = [k for k in before if ".encoder_attn.q_proj.weight" in k]
    assert kv and q
    assert all(torch.equal(before[k], after[k]) for k in kv)
    assert not all(torch.equal(before[k], after[k]) for k in q)


def test_resume_after_kill_matches_uninterrupted_run(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path
) -> None:
    settings = (
        "method=lora",
        "lora.scope=decoder",
        "lora.r=4",
        "lora.dropout=0.1",  # dropout draws from the RNG: its state must be restored too
        "speed_perturb=[0.9, 1.0, 1.1]",  # per-epoch draws must repeat after the resume
        "batch_size=2",  # 2 steps per epoch: the kill at step 3 is mid-epoch
        "max_steps=6",
        "eval_steps=3",
        "eval_limit=1",
        "learning_rate=5e-3",
    )
    a, b = tmp_path / "a", tmp_path / "b"
    finetune(_cfg(tiny_whisper, few_clips, a, *settings))
    with pytest.raises(KeyboardInterrupt):
        finetune(_cfg(tiny_whisper, few_clips, b, *settings), callbacks=[KillAfterSave(3)])
    assert (b / "checkpoint-3").is_dir() and not (b / "checkpoint-6").exists()
    with pytest.raises(ConfigError, match="--resume"):
        finetune(_cfg(tiny_whisper, few_clips, b, *settings))
    finetune(_cfg(tiny_whisper, few_clips, b, *settings), resume=True)

    loss_a, loss_b = _losses(a), _losses(b)
    assert sorted(loss_a) == sorted(loss_b) == [1, 2, 3, 4, 5, 6]
    for step in loss_a:
        assert loss_b[step] == pytest.approx(loss_a[step], rel=1e-5, abs=1e-6), step
    assert len({round(v, 4) for v in loss_a.values()}) > 1  # training really changed the weights
    weights_a = load_file(a / "checkpoint-6" / "adapter_model.safetensors")
    weights_b = load_file(b / "checkpoint-6" / "adapter_model.safetensors")
    assert weights_a.keys() == weights_b.keys() and weights_a
    for key, value in weights_a.items():
        torch.testing.assert_close(weights_b[key], value, rtol=1e-5, atol=1e-6)
    summary_b = json.loads((b / "summary.json").read_text(encoding="utf-8"))
    summary_a = json.loads((a / "summary.json").read_text(encoding="utf-8"))
    assert summary_b["best_step"] == summary_a["best_step"]
    assert summary_b["test"]["fine_tuned"]["cer"] == summary_a["test"]["fine_tuned"]["cer"]


def test_two_processes_with_gloo(tiny_whisper: Path, few_clips: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "asr.cli", "finetune",
        f"model={tiny_whisper}", f"data={few_clips}", f"output_dir={out}", "method=lora", "lora.scope=decoder",
        "lora.r=4", "max_steps=4", "eval_steps=2", "batch_size=1", "eval_limit=2", "num_workers=0",
        "zero_shot=false", "bootstrap=0", "logging_steps=1", "device=cpu",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = FinetuneSummary.load(out / "summary.json")
    assert summary.world_size == 2 and summary.global_step == 4
    assert summary.effective_batch_size == 2
    cer_steps = [r["step"] for r in _log(out) if "eval_cer" in r]
    assert cer_steps == [2, 4]  # the main process validated; the other one waited for the metric
    model = load_model(out / "best", device="cpu")
    assert model.family == "whisper"


def test_early_stopping_with_accumulation_checkpointing_and_specaugment(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    cfg = _cfg(
        tiny_whisper,
        few_clips,
        out,
        "method=full",
        "learning_rate=1e-12",  # nothing changes, so validation CER never improves
        "patience=1",
        "max_steps=10",
        "eval_steps=1",
        "batch_size=1",
        "grad_accum=2",
        "gradient_checkpointing=true",
        "spec_augment=true",
        "eval_limit=1",
    )
    summary = finetune(cfg)
    assert summary.global_step == 2 and summary.stopped_early
    assert summary.effective_batch_size == 2
    assert summary.best_step == 1
    assert (
        json.loads((out / "best" / "config.json").read_text(encoding="utf-8"))["apply_spec_augment"] is True
    )


def _empty_train(few_clips: Path, tmp_path: Path) -> Path:
    data = tmp_path / "empty-train"
    for split in ("validation", "test"):
        write_manifest(
            data / "manifests" / f"{split}.jsonl", read_manifest(few_clips / "manifests" / f"{split}.jsonl")
        )
    (data / "manifests" / "train.jsonl").write_text("", encoding="utf-8")
    return data


@pytest.mark.parametrize(
    ("case", "error", "message"),
    [
        ("unknown model", ModelSourceError, "unknown model 'whisper-bse'.*registered models: whisper-tiny"),
        ("missing manifest", DataError, "train manifest not found"),
        ("empty train split", DataError, "the train split is empty"),
        ("bf16 on cpu", ConfigError, "precision=bf16 needs a GPU"),
        ("bad model option", ConfigError, "audio_context must be full, auto or seconds"),
    ],
)
def test_errors_before_any_compute(
    case: str, error: type, message: str, tiny_whisper: Path, few_clips: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    overrides = {
        "unknown model": ["model=whisper-bse"],
        "missing manifest": [f"data={tmp_path / 'nowhere'}"],
        "empty train split": [f"data={_empty_train(few_clips, tmp_path)}"],
        "bf16 on cpu": ["precision=bf16", "device=cpu"],
        "bad model option": ["model_options.audio_context=short"],
    }[case]
    cfg = _cfg(tiny_whisper, few_clips, out, "max_steps=2", *overrides)
    with pytest.raises(error, match=message):
        finetune(cfg)
    assert not out.exists()


def test_unknown_config_key_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = REPO / "configs" / "whisper-base-lora.yaml"
    assert main(["finetune", "--config", str(config), f"output_dir={tmp_path}", "lerning_rate=1e-4"]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'lerning_rate'; did you mean 'learning_rate'?" in err
    assert "valid keys:" in err


def _build(kind: str, out: Path, texts: list[str]) -> Path:
    from tests.model_factory import FUNASR_KINDS, build

    return build("xlsr-53-zh" if kind == "ctc" else FUNASR_KINDS[kind], out, texts=texts)


@pytest.mark.parametrize(
    ("kind", "method"), [("ctc", "full"), ("ctc", "lora"), ("paraformer", "full"), ("paraformer", "lora")]
)
def test_other_families_train_and_save_best(kind: str, method: str, few_clips: Path, tmp_path: Path) -> None:
    texts = [u.text_norm for u in read_manifest(few_clips / "manifests" / "train.jsonl")]
    model_dir = _build(kind, tmp_path / "model", texts)
    out = tmp_path / "run"
    settings = (
        "max_steps=2",
        "eval_steps=2",
        "batch_size=2",
        "eval_limit=2",
        "learning_rate=1e-3",
        "lora.r=4",
    )
    cfg = _cfg(model_dir, few_clips, out, f"method={method}", *settings)
    summary = finetune(cfg)
    assert summary.global_step == 2 and summary.best_step == 2
    assert set(_losses(out)) == {1, 2}
    reloaded = load_model(out / "best", device="cpu")
    assert reloaded.family == summary.family


def test_all_oov_transcripts_fail_before_training(few_clips: Path, tmp_path: Path) -> None:
    from tests.model_factory import build

    # a vocabulary without any Chinese character
    model_dir = build("xlsr-53-zh", tmp_path / "latin", texts=["abc def"])
    out = tmp_path / "run"
    with pytest.raises(DataError, match="none of the 4 training transcripts"):
        finetune(_cfg(model_dir, few_clips, out, "method=full", "max_steps=2"))
    report = json.loads((out / "unknown_characters.json").read_text(encoding="utf-8"))
    assert report["transcripts_without_known_characters"] == 4
    assert not list(out.glob("checkpoint-*"))
