"""``asr finetune`` under faults: NaN steps, a kill or a full disk mid-checkpoint, bad config values,
a failing report step.

Tiny random Whisper (LoRA on the decoder) on four demo clips, a few steps each; the NaN is
injected by poisoning the loss (``prepare`` and the audio loader refuse NaN clips).
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load, load_file, save_file
from transformers import TrainerCallback

from asr.cli import main
from asr.data.manifest import read_manifest, write_manifest
from asr.errors import ConfigError, TrainingError
from asr.models import load_model
from asr.run_records import FinetuneSummary
from asr.train.faults import checkpoint_problem
from asr.train.finetune_config import load_finetune_config
from asr.train.recipe import FinetuneRecipe, finetune
from asr.train.resume import resume_point
from asr.train.trainer import LossModule
from tests.train_callbacks import KillAfterSave

ADAPTER = "adapter_model.safetensors"
pytestmark = pytest.mark.usefixtures("one_thread")


def _overrides(model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    return [
        f"model={model}",
        f"data={data}",
        f"output_dir={out}",
        "method=lora",
        "lora.scope=decoder",
        "lora.r=4",
        "batch_size=2",  # 4 clips: 2 steps an epoch
        "eval_steps=2",
        "eval_limit=1",
        "learning_rate=5e-3",
        "num_workers=0",
        "bootstrap=0",
        "zero_shot=false",
        "warmup_ratio=0",
        "logging_steps=1",
        "patience=null",
        "report_to=[]",
        *extra,
    ]


def _cfg(model: Path, data: Path, out: Path, *extra: str):
    return load_finetune_config(None, _overrides(model, data, out, *extra))


def _cli(model: Path, data: Path, out: Path, *extra: str, resume: bool = False) -> int:
    return main(["finetune", *_overrides(model, data, out, *extra), *(["--resume"] if resume else [])])


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()
    }


def _trainable(model: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


class PoisonedLoss:
    """Patches :class:`LossModule` so that a batch holding one of ``keys`` (all: None) has a NaN loss."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, keys: set[str] | None = None):
        self.keys = keys
        self.fired = False
        original = LossModule.forward

        def forward(module, **batch):
            out = original(module, **batch)
            if self.keys is None or self.keys & set(batch["keys"]):
                self.fired = True
                out["loss"] = out["loss"] * float("nan")  # NaN loss and NaN gradients
            return out

        monkeypatch.setattr(LossModule, "forward", forward)


# --- 4. config values -------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("learning_rate=nan", "learning_rate"),
        ("learning_rate=inf", "learning_rate"),
        ("learning_rate=-.inf", "learning_rate"),
        ("weight_decay=nan", "weight_decay"),
        ("warmup_ratio=NaN", "warmup_ratio"),
        ("max_grad_norm=inf", "max_grad_norm"),
        ("num_epochs=inf", "num_epochs"),
        ("lora.dropout=nan", "lora.dropout"),
        ("speed_perturb=[1.0, nan]", r"speed_perturb\[1\]"),
        ("max_duration=inf", "max_duration"),
    ],
)
def test_float_config_values_must_be_finite(override: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: expected a finite number"):
        load_finetune_config(None, [override])


def test_non_finite_floats_in_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "cfg.yaml"
    path.write_text("learning_rate: .nan\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="learning_rate: expected a finite number"):
        load_finetune_config(path)
    path.write_text("weight_decay: .inf\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="weight_decay: expected a finite number"):
        load_finetune_config(path)


def test_non_utf8_yaml_is_a_config_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("max_steps: 10\n# modèle\n".encode("latin-1"))  # è is byte 0xe8 at offset 19
    with pytest.raises(ConfigError, match=rf"{path.name}: not UTF-8 text \(.* at byte 19\)"):
        load_finetune_config(path)
    assert main(["finetune", "--config", str(path), f"output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "byte 19" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_config_mistakes_found_by_the_probe_are_one_error_line(tmp_path: Path, capsys) -> None:
    """issue 21: ``lora: 5`` plus ``lora.r=4``, a tracker that is not installed and a negative seed
    ended in tracebacks (the first two after the model had loaded)."""
    path = tmp_path / "c.yaml"
    path.write_text("lora: 5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"override 'lora.r=4': lora is 5 in the config, not a section"):
        load_finetune_config(path, ["lora.r=4"])
    with pytest.raises(ConfigError, match="report_to: no_such_tracker is not installed"):
        load_finetune_config(None, ["report_to=[no_such_tracker]"])
    with pytest.raises(ConfigError, match="seed must be between 0 and 2\\*\\*32 - 1"):
        load_finetune_config(None, ["seed=-1"])
    assert main(["finetune", "--config", str(path), "lora.r=4", f"output_dir={tmp_path / 'run'}"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_max_nonfinite_steps_is_validated() -> None:
    assert load_finetune_config(None).max_nonfinite_steps == 10
    assert load_finetune_config(None, ["max_nonfinite_steps=0"]).max_nonfinite_steps == 0
    with pytest.raises(ConfigError, match="max_nonfinite_steps must be >= 0"):
        load_finetune_config(None, ["max_nonfinite_steps=-1"])


# --- 2. resume point (no training) ------------------------------------------
def _fake_checkpoint(folder: Path, *, state: bool = True) -> Path:
    """The files a Trainer checkpoint holds, tiny; ``state=False``: killed before trainer_state.json."""
    folder.mkdir(parents=True)
    save_file({"w": torch.zeros(3)}, folder / ADAPTER)
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        torch.save({"x": 1}, folder / name)
    if state:
        (folder / "trainer_state.json").write_text('{"global_step": 1}', encoding="utf-8")
    return folder


def test_resume_point_skips_incomplete_checkpoints(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "run"
    good = _fake_checkpoint(out / "checkpoint-2")
    assert checkpoint_problem(good) is None
    no_state = _fake_checkpoint(out / "checkpoint-4", state=False)
    cut = _fake_checkpoint(out / "checkpoint-10")
    weights = (cut / ADAPTER).read_bytes()
    (cut / ADAPTER).write_bytes(weights[: len(weights) - 4])
    assert "trainer_state.json" in checkpoint_problem(no_state)
    assert "cut short" in checkpoint_problem(cut)

    with caplog.at_level(logging.WARNING):
        assert resume_point(out, resume=True) == str(good)
    assert "skipping" in caplog.text and "checkpoint-10" in caplog.text and "checkpoint-4" in caplog.text
    with pytest.raises(ConfigError, match="--resume"):  # without --resume any checkpoint still refuses
        resume_point(out, resume=False)

    (good / "optimizer.pt").write_bytes((good / "optimizer.pt").read_bytes()[:50])
    assert "optimizer.pt" in checkpoint_problem(good)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert resume_point(out, resume=True) is None
    assert "starting from the beginning" in caplog.text


# --- 1. non-finite loss and gradients ---------------------------------------


@pytest.mark.e2e
def test_nan_loss_stops_the_run_with_an_error(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, monkeypatch, capsys, caplog
) -> None:
    PoisonedLoss(monkeypatch)  # every batch: what NaN audio used to do
    out = tmp_path / "run"
    with caplog.at_level(logging.WARNING, logger="asr.train.trainer"):
        assert _cli(tiny_whisper, few_clips, out, "max_steps=4", "max_nonfinite_steps=1") == 2
    err = capsys.readouterr().err
    assert "error: training stopped at step 2" in err and "max_nonfinite_steps=1" in err, err
    assert "Traceback" not in err
    first = read_manifest(few_clips / "manifests" / "train.jsonl")[0].id
    assert "step 1: non-finite loss" in caplog.text and "step 2: non-finite loss" in caplog.text
    assert "utterances: " in caplog.text and first in caplog.text  # every clip was in a poisoned batch
    assert not (out / "best").exists() and not (out / ".best.staging").exists()
    assert not (out / "summary.json").exists()


@pytest.mark.e2e
def test_a_nonfinite_step_is_skipped_and_leaves_the_weights_alone(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    bad = read_manifest(few_clips / "manifests" / "train.jsonl")[1].id
    poison = PoisonedLoss(monkeypatch, {bad})

    skipped: list[int] = []
    updated: list[int] = []

    class Watch(TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kwargs):
            poison.fired = False
            self.before = _trainable(model)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            after = _trainable(model)
            same = all(torch.equal(a, b) for a, b in zip(self.before, after, strict=True))
            assert all(bool(torch.isfinite(p).all()) for p in after), state.global_step
            (skipped if poison.fired else updated).append(state.global_step)
            assert same == poison.fired, (state.global_step, poison.fired)

    out = tmp_path / "run"
    cfg = _cfg(tiny_whisper, few_clips, out, "max_steps=4", "max_nonfinite_steps=2")
    with caplog.at_level(logging.WARNING, logger="asr.train.trainer"):
        summary = finetune(cfg, callbacks=[Watch()])
    assert len(skipped) == 2 and len(updated) == 2, (skipped, updated)
    for step in skipped:
        assert f"step {step}: non-finite loss" in caplog.text
    assert f"utterances: {bad}" in caplog.text
    assert summary is not None and summary.global_step == 4
    weights = load_file(out / "best" / ADAPTER)
    assert weights and all(bool(torch.isfinite(v).all()) for v in weights.values())
    logged = [json.loads(line) for line in (out / "train_log.jsonl").read_text(encoding="utf-8").splitlines()]
    assert max(r.get("nonfinite_steps", 0) for r in logged) == 2


@pytest.mark.e2e
def test_a_nonfinite_gradient_with_a_finite_loss_counts_too(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, capsys
) -> None:
    class InfiniteGradients(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, **kwargs):
            param = next(p for p in model.parameters() if p.requires_grad)
            param.register_hook(lambda grad: grad * math.inf)

    out = tmp_path / "run"
    cfg = _cfg(tiny_whisper, few_clips, out, "max_steps=2", "max_nonfinite_steps=0")
    with pytest.raises(
        TrainingError, match=r"training stopped at step 1: .* the last one: non-finite gradient norm"
    ):
        finetune(cfg, callbacks=[InfiniteGradients()])
    assert not list(out.glob("checkpoint-*")) and not (out / "best").exists()


@pytest.mark.e2e
def test_nonfinite_weights_are_never_saved_as_best(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path
) -> None:
    class PoisonWeights(TrainerCallback):
        """Stands in for a step whose NaN got past the guard (e.g. under DeepSpeed)."""

        def on_step_end(self, args, state, control, model=None, **kwargs):
            with torch.no_grad():
                next(p for p in model.parameters() if p.requires_grad).fill_(math.nan)

    out = tmp_path / "run"
    cfg = _cfg(tiny_whisper, few_clips, out, "max_steps=2")
    with pytest.raises(
        TrainingError, match=r"checkpoint-2\) holds NaN or infinite weights.*best was not written"
    ):
        finetune(cfg, callbacks=[PoisonWeights()])
    assert not (out / "best").exists() and not (out / ".best.staging").exists()


# --- 2. a kill while a checkpoint is written ----------------------------------
@pytest.mark.e2e
@pytest.mark.parametrize("damage", ["trainer_state.json missing", "weights cut short"])
def test_resume_skips_a_checkpoint_cut_short_by_a_kill(
    damage: str, tiny_whisper: Path, few_clips: Path, tmp_path: Path, caplog
) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        finetune(_cfg(tiny_whisper, few_clips, out, "max_steps=4"), callbacks=[KillAfterSave(4)])
    last = out / "checkpoint-4"
    expected = load((last / ADAPTER).read_bytes())  # step 4 of the uninterrupted run (a copy: no mmap)
    if damage == "trainer_state.json missing":
        (last / "trainer_state.json").unlink()
    else:
        data = (last / ADAPTER).read_bytes()
        (last / ADAPTER).write_bytes(data[: len(data) // 2])

    with caplog.at_level(logging.WARNING, logger="asr.train.resume"):
        assert _cli(tiny_whisper, few_clips, out, "max_steps=4", resume=True) == 0
    assert f"skipping {last}" in caplog.text

    assert checkpoint_problem(last) is None
    again = load_file(last / ADAPTER)
    assert again.keys() == expected.keys()
    for key, value in expected.items():  # steps 3-4 retrained from checkpoint-2 match the first run's
        torch.testing.assert_close(again[key], value, rtol=1e-5, atol=1e-6)
    summary = FinetuneSummary.load(out / "summary.json")
    assert summary.global_step == 4 and summary.best_step in (2, 4)
    assert load_model(out / "best", device="cpu").family == "whisper"
    steps = [
        r["step"] for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if "loss" in r
    ]
    assert steps == [1, 2, 3, 4]


# --- 3. a full disk while a checkpoint is written ------------------------------
@pytest.mark.e2e
def test_full_disk_during_a_checkpoint_keeps_the_previous_one(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    out = tmp_path / "run"
    assert _cli(tiny_whisper, few_clips, out, "max_steps=2") == 0
    best_before, checkpoint_before = _digest(out / "best"), _digest(out / "checkpoint-2")
    summary_before = (out / "summary.json").read_bytes()
    capsys.readouterr()

    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if "checkpoint-4" in str(f):
            raise OSError(errno.ENOSPC, "No space left on device", str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    assert _cli(tiny_whisper, few_clips, out, "max_steps=4", resume=True) == 2
    err = capsys.readouterr().err
    assert f"cannot write the checkpoint {out / 'checkpoint-4'}: no space left on device" in err, err
    assert "Traceback" not in err
    assert not (out / "checkpoint-4").exists()  # the half-written folder is gone
    assert checkpoint_problem(out / "checkpoint-2") is None
    assert _digest(out / "checkpoint-2") == checkpoint_before
    assert _digest(out / "best") == best_before and (out / "summary.json").read_bytes() == summary_before
    load_model(out / "best", device="cpu")

    monkeypatch.setattr(torch, "save", real_save)
    assert _cli(tiny_whisper, few_clips, out, "max_steps=4", resume=True) == 0
    assert FinetuneSummary.load(out / "summary.json").global_step == 4
    assert checkpoint_problem(out / "checkpoint-4") is None
    load_model(out / "best", device="cpu")


# --- 5. best/ only once the run has succeeded ---------------------------------
@pytest.mark.e2e
def test_a_failing_report_leaves_best_alone(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, monkeypatch
) -> None:
    out = tmp_path / "run"
    real_test = FinetuneRecipe._test_fine_tuned

    def broken(self):
        raise RuntimeError("test split evaluation failed")

    monkeypatch.setattr(FinetuneRecipe, "_test_fine_tuned", broken)
    with pytest.raises(RuntimeError, match="test split evaluation failed"):
        finetune(_cfg(tiny_whisper, few_clips, out, "max_steps=2"))
    assert not (out / "best").exists() and not (out / "summary.json").exists()

    monkeypatch.setattr(FinetuneRecipe, "_test_fine_tuned", real_test)
    finetune(_cfg(tiny_whisper, few_clips, out, "max_steps=2"), resume=True)
    good, summary = _digest(out / "best"), (out / "summary.json").read_bytes()
    assert ADAPTER in good and not (out / ".best.staging").exists()

    monkeypatch.setattr(FinetuneRecipe, "_test_fine_tuned", broken)
    with pytest.raises(RuntimeError, match="test split evaluation failed"):
        finetune(_cfg(tiny_whisper, few_clips, out, "max_steps=4"), resume=True)
    assert _digest(out / "best") == good and (out / "summary.json").read_bytes() == summary
    load_model(out / "best", device="cpu")


def test_an_undecodable_training_clip_stops_before_the_first_step(
    tiny_whisper: Path, few_clips: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It passed preflight (existence only) and crashed a DataLoader worker mid-run (issue 21)."""
    utts = read_manifest(few_clips / "manifests" / "train.jsonl")
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    utts[1].audio = str(bad)
    data = tmp_path / "data"
    for split in ("train", "validation", "test"):
        write_manifest(data / "manifests" / f"{split}.jsonl", utts if split == "train" else utts[:1])
    out = tmp_path / "run"
    assert _cli(tiny_whisper, data, out) == 2
    err = capsys.readouterr().err
    assert (
        f"train.jsonl: 1 of 4 clips cannot be decoded: {utts[1].id} ({bad}: not a decodable audio file" in err
    )
    assert "Traceback" not in err
    assert not list(out.glob("checkpoint-*"))
