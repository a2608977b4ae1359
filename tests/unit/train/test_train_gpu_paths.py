"""Fine-tuning defects that show only on GPUs, checked on the CPU with patched device checks.

- several visible GPUs in one process (no torchrun) are refused before any work;
- ``precision: auto`` picks bf16 only where the GPU has it natively (not emulated: T4, V100);
- NVIDIA GPUs that torch cannot use (driver too old for its CUDA): ``device: auto`` warns, ``cuda`` fails;
- validation is sharded across ranks, merged and scored once (the CER of a single pass), runs
  under autocast in the training precision on CUDA, and an error on one rank is raised on all;
- the Trainer (optimizer state) is released before the test decode, and the zero-shot model
  loads in the training half precision on CUDA.
"""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data.manifest import Utterance
from asr.errors import ConfigError, TrainingError
from asr.inference import EvalSettings, evaluate
from asr.models.registry import get_spec
from asr.train import preflight
from asr.train.finetune_config import load_finetune_config
from asr.train.preflight import bf16_supported, device_and_precision
from asr.train.validation import decode_autocast, merge_shards, raise_if_any_failed, shard, shard_dir

TEXTS = ["长沙话好恰咯", "今天恰么子饭", "口味虾还冇剥完咧", "你港么子咯", "冇得事"]


class Stop(Exception):
    """Ends a recipe step early, once the mock has seen what it checks."""


def _cfg(*overrides: str):
    return load_finetune_config(None, ["model=whisper-tiny", "zero_shot=true", *overrides])


@pytest.fixture
def gpus(monkeypatch: pytest.MonkeyPatch):
    """Pretend CUDA is there with ``n`` GPUs of native bf16; returns a setter for the count."""

    def visible(n: int) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    return visible


# --- A1: several GPUs, one process -------------------------------------------------------------


def test_several_gpus_without_torchrun_are_refused(gpus) -> None:
    gpus(4)
    with pytest.raises(ConfigError) as err:
        device_and_precision(_cfg())
    message = str(err.value)
    assert "torchrun --nproc_per_node 4 -m asr.cli finetune" in message
    assert "CUDA_VISIBLE_DEVICES=0" in message


@pytest.mark.parametrize(
    ("n_gpus", "world_size", "overrides"),
    [
        (1, None, ()),  # one GPU
        (4, "4", ()),  # torchrun: one GPU per process
        (4, None, ("deepspeed=configs/deepspeed/zero2.json",)),  # DeepSpeed: its own process group
        (4, None, ("device=cpu", "precision=fp32")),  # a CPU run ignores the GPUs
    ],
)
def test_one_gpu_per_process_is_accepted(
    gpus, monkeypatch: pytest.MonkeyPatch, n_gpus: int, world_size: str | None, overrides: tuple[str, ...]
) -> None:
    gpus(n_gpus)
    if world_size:
        monkeypatch.setenv("WORLD_SIZE", world_size)
    device, _ = device_and_precision(_cfg(*overrides))
    assert device == ("cpu" if "device=cpu" in overrides else "cuda")


def test_several_gpus_are_refused_before_the_model_loads(
    gpus, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from asr.train import recipe

    gpus(2)
    monkeypatch.setattr(recipe, "check_model_reference", lambda model: None)
    monkeypatch.setattr(recipe, "load_splits", lambda cfg: SimpleNamespace(train=[], validation=[], test=[]))

    def no_load(*args: Any, **kwargs: Any):
        raise AssertionError("the model was loaded before the device check")

    monkeypatch.setattr(recipe, "load_model", no_load)
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match="torchrun"):
        recipe.FinetuneRecipe(_cfg(f"output_dir={out}")).setup()
    assert not out.exists()


# --- A2: native bf16 only ----------------------------------------------------------------------


def test_auto_precision_is_fp16_where_bf16_is_only_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    # a T4/V100: emulated bf16 only (what torch reports with the default including_emulation=True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert not bf16_supported()
    assert device_and_precision(_cfg()) == ("cuda", "fp16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # A100, H100
    assert device_and_precision(_cfg()) == ("cuda", "bf16")


@pytest.mark.parametrize(
    ("capability", "native"), [((7, 5), False), ((7, 0), False), ((8, 0), True), ((9, 0), True)]
)
def test_bf16_from_compute_capability_on_older_torch(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], native: bool
) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # no including_emulation switch
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert preflight.bf16_supported() is native  # re-exported from asr.models


# --- A3: sharded validation ---------------------------------------------------------------------


class FakeModel:
    """Deterministic predictions from the audio alone (so any split of the clips decodes alike)."""

    family = "whisper"
    device = torch.device("cpu")
    dtype = torch.float32
    max_audio_seconds = None  # the ASRModel interface: clips of any length decoded whole

    def __init__(self, fail: bool = False):
        self.spec = get_spec("whisper-tiny")
        self.fail = fail
        self.calls = 0

    def transcribe(self, waves, options, durations=None) -> list[str]:
        self.calls += 1
        if self.fail:
            raise RuntimeError("CUDA out of memory (fake)")
        return [TEXTS[round(len(w) / 1600) % len(TEXTS)][: 2 + round(len(w) / 1600) % 4] for w in waves]

    def clean_prediction(self, text: str) -> str:
        return text

    def decoding_settings(self, options) -> dict[str, Any]:
        return {"beam_size": options.beam_size}

    def decode_stats(self) -> dict[str, Any]:  # the ASRModel interface: nothing counted
        return {}

    def reset_decode_stats(self) -> None:
        pass


def _clips(folder: Path, n: int = 11) -> list[Utterance]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    utts = []
    for i in range(n):
        seconds = 0.2 + 0.1 * ((i * 7) % 9)
        path = folder / f"u{i:02d}.wav"
        sf.write(path, (0.1 * rng.standard_normal(round(seconds * 16000))).astype(np.float32), 16000)
        text = TEXTS[i % len(TEXTS)]
        utts.append(Utterance(f"u{i:02d}", str(path), round(seconds, 3), text, text, "validation"))
    return utts


SETTINGS = EvalSettings(batch_size=3, n_bootstrap=0, progress=False)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4, 16])
def test_shards_cover_every_clip_once(world_size: int) -> None:
    utts = _clips_meta(13)
    slices = [shard(utts, r, world_size) for r in range(world_size)]
    ids = [u.id for part in slices for u in part]
    assert sorted(ids) == sorted(u.id for u in utts)
    sizes = [len(part) for part in slices]
    assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        shard(utts, world_size, world_size)


def _clips_meta(n: int) -> list[Utterance]:
    return [Utterance(f"u{i:02d}", f"u{i:02d}.wav", 0.5 + (i * 5) % 7, "长沙", "长沙") for i in range(n)]


@pytest.mark.parametrize("world_size", [2, 3])
def test_sharded_validation_scores_like_one_pass(tmp_path: Path, world_size: int) -> None:
    utts = _clips(tmp_path / "clips")
    model = FakeModel()
    single = evaluate(model, utts, tmp_path / "single", SETTINGS, split="validation", step=5)
    out = tmp_path / "sharded"
    for rank in range(world_size):
        evaluate(
            model, shard(utts, rank, world_size), shard_dir(out, rank), SETTINGS, split="validation", step=5
        )
    merged = merge_shards(
        model, utts, [shard_dir(out, r) for r in range(world_size)], out, SETTINGS, split="validation", step=5
    )
    assert 0 < single.record.metrics.cer < 1  # the check means something
    for key in ("cer", "ser", "errors", "substitutions", "deletions", "insertions", "ref_chars", "wer"):
        assert getattr(merged.record.metrics, key) == getattr(single.record.metrics, key), key
    first = json.loads((tmp_path / "single" / "metrics.json").read_text(encoding="utf-8"))
    again = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert again["cer"] == first["cer"] and again["step"] == 5 and again["split"] == "validation"

    def rows(folder: Path) -> list[list[str]]:
        lines = (folder / "predictions.csv").read_text(encoding="utf-8").splitlines()
        return [line.split(",")[:4] for line in lines]  # decode_seconds differ

    assert rows(out) == rows(tmp_path / "single")  # manifest order
    assert (out / "per_utterance.csv").read_text() == (tmp_path / "single" / "per_utterance.csv").read_text()


def test_merge_refuses_missing_predictions(tmp_path: Path) -> None:
    utts = _clips(tmp_path / "clips", n=4)
    model = FakeModel()
    evaluate(model, shard(utts, 0, 2), shard_dir(tmp_path / "v", 0), SETTINGS)
    with pytest.raises(Exception, match="2 validation utterances have no prediction"):
        merge_shards(model, utts, [shard_dir(tmp_path / "v", r) for r in range(2)], tmp_path / "v", SETTINGS)


@pytest.mark.filterwarnings("ignore:CUDA is not available")
def test_decode_autocast_follows_training_precision() -> None:
    bf16 = decode_autocast(torch.device("cuda", 0), "bf16")
    assert isinstance(bf16, torch.autocast) and bf16.device == "cuda" and bf16.fast_dtype == torch.bfloat16
    fp16 = decode_autocast("cuda", "fp16")
    assert isinstance(fp16, torch.autocast) and fp16.fast_dtype == torch.float16
    assert not isinstance(decode_autocast("cuda", "fp32"), torch.autocast)
    assert not isinstance(decode_autocast("cpu", "bf16"), torch.autocast)


class _Module:
    training = True

    def eval(self):
        self.training = False

    def train(self, mode: bool = True):
        self.training = mode


def _bare_trainer(tmp_path: Path, model: FakeModel, utts: list[Utterance], **args: Any):
    """An ASRTrainer with only what validation reads (no Trainer.__init__: no model, no optimizer)."""
    from asr.train.trainer import ASRTrainer

    trainer = ASRTrainer.__new__(ASRTrainer)
    defaults = {
        "output_dir": str(tmp_path),
        "process_index": 0,
        "world_size": 1,
        "device": torch.device("cpu"),
        "bf16": False,
        "fp16": False,
    }
    trainer.args = SimpleNamespace(**{**defaults, **args})
    trainer.state = SimpleNamespace(global_step=7)
    trainer.model = _Module()
    trainer.asr_model = model
    trainer.validation = utts
    trainer.eval_settings = SETTINGS
    return trainer


def test_validation_decodes_under_autocast_on_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from asr.train import trainer as trainer_module

    utts = _clips(tmp_path / "clips", n=3)
    seen: dict[str, Any] = {}

    class Recorder:
        entered = False

        def __enter__(self):
            Recorder.entered = True

        def __exit__(self, *exc):
            Recorder.entered = False

    def fake_autocast(device, precision):
        seen["autocast"] = (torch.device(device).type, precision)
        return Recorder()

    def fake_evaluate(model, utts, out, settings, **context):
        seen["inside_autocast"] = Recorder.entered
        seen["grad"] = torch.is_grad_enabled()
        return evaluate(model, utts, out, settings, **context)

    monkeypatch.setattr(trainer_module, "decode_autocast", fake_autocast)
    monkeypatch.setattr(trainer_module, "evaluate", fake_evaluate)
    trainer = _bare_trainer(tmp_path / "run", FakeModel(), utts, device=torch.device("cuda", 0), bf16=True)
    metrics = trainer._validate("eval")
    assert seen == {"autocast": ("cuda", "bf16"), "inside_autocast": True, "grad": False}
    assert metrics["eval_cer"] >= 0 and trainer.model.training  # back to training mode
    assert (tmp_path / "run" / "validation" / "step-7" / "metrics.json").is_file()


def test_validation_error_is_raised_with_its_rank() -> None:
    raise_if_any_failed(None, "validation")  # nothing failed: no error
    with pytest.raises(TrainingError, match="validation at step 3 failed: rank 1: RuntimeError: boom"):
        raise_if_any_failed("rank 1: RuntimeError: boom", "validation at step 3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank_worker(rank: int, port: int, root: str) -> None:
    """One rank of a 2-process gloo group: ASRTrainer validation at step 7 (fine), then at step 8 with
    rank 1's model failing; writes what each returned or raised."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    root_dir = Path(root)
    try:
        utts = [
            Utterance(u["id"], u["audio"], u["duration"], u["text"], u["text"])
            for u in json.loads((root_dir / "utts.json").read_text())
        ]
        trainer = _bare_trainer(root_dir / "run", FakeModel(), utts, process_index=rank, world_size=2)
        results: list[Any] = []
        for step, fail in ((7, False), (8, rank == 1)):
            trainer.state.global_step = step
            trainer.asr_model = FakeModel(fail=fail)
            try:
                results.append({"metrics": trainer._validate("eval")})
            except TrainingError as err:
                results.append({"error": str(err)})
        (root_dir / f"rank-{rank}.json").write_text(json.dumps(results), encoding="utf-8")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.timeout(300)
def test_two_ranks_share_validation_and_its_errors(tmp_path: Path) -> None:
    import torch.multiprocessing as mp

    utts = _clips(tmp_path / "clips", n=5)
    rows = [{"id": u.id, "audio": u.audio, "duration": u.duration, "text": u.text} for u in utts]
    (tmp_path / "utts.json").write_text(json.dumps(rows), encoding="utf-8")
    mp.spawn(_rank_worker, args=(_free_port(), str(tmp_path)), nprocs=2, join=True)
    (ok0, failed0), (ok1, failed1) = (
        json.loads((tmp_path / f"rank-{r}.json").read_text(encoding="utf-8")) for r in range(2)
    )
    single = evaluate(FakeModel(), utts, tmp_path / "single", SETTINGS)
    assert ok0["metrics"]["eval_cer"] == ok1["metrics"]["eval_cer"] == single.record.metrics.cer
    step = tmp_path / "run" / "validation" / "step-7"
    assert (step / "metrics.json").is_file() and not list(step.glob("rank-*"))
    for failed in (failed0, failed1):  # rank 1 failed: rank 0 raises too, rather than waiting
        assert (
            "validation at step 8 failed: rank 1: RuntimeError: CUDA out of memory (fake)" in failed["error"]
        )


# --- A4: memory before the test decodes ---------------------------------------------------------


def _bare_recipe(tmp_path: Path, device: str, precision: str):
    from asr.models.spec import DecodeOptions
    from asr.train.recipe import FinetuneRecipe

    recipe = FinetuneRecipe(_cfg(f"output_dir={tmp_path / 'run'}"))
    recipe.args = SimpleNamespace(device=torch.device(device))
    recipe.device, recipe.precision = torch.device(device).type, precision
    recipe.splits = SimpleNamespace(test=["u1"])
    recipe.asr_model = SimpleNamespace(module=_Module())
    recipe.eval_batch_size, recipe.decode, recipe.best_step = 4, DecodeOptions(), 10
    return recipe


def test_optimizer_is_released_before_the_test_decode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from asr.train import recipe as recipe_module

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    emptied: list[bool] = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: emptied.append(True))
    freed: list[bool] = []
    trainer = SimpleNamespace(
        is_world_process_zero=lambda: True,
        state=SimpleNamespace(global_step=10, best_model_checkpoint=None),
        optimizer=torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))]),
        lr_scheduler=object(),
        model=object(),
        model_wrapped=object(),
        accelerator=SimpleNamespace(free_memory=lambda: freed.append(True)),
        callback_handler=SimpleNamespace(optimizer=object(), lr_scheduler=object()),
    )
    recipe = _bare_recipe(tmp_path, "cuda:0", "bf16")
    recipe.trainer = trainer
    seen: dict[str, Any] = {}

    def fake_evaluate_split(model, utts, out, settings, resume, **context):
        seen.update(
            split=context["split"],
            recipe_trainer=recipe.trainer,
            optimizer=trainer.optimizer,
            handler_optimizer=trainer.callback_handler.optimizer,
            freed=list(freed),
            emptied=list(emptied),
        )
        raise Stop

    monkeypatch.setattr(recipe_module, "evaluate_split", fake_evaluate_split)
    monkeypatch.setattr(recipe_module, "decode_autocast", lambda device, precision: contextlib.nullcontext())
    with pytest.raises(Stop):
        recipe.report()
    assert seen == {
        "split": "test",
        "recipe_trainer": None,
        "optimizer": None,
        "handler_optimizer": None,
        "freed": [True],
        "emptied": [True],
    }


@pytest.mark.parametrize(
    ("device", "precision", "dtype"),
    [
        ("cuda:0", "bf16", "bf16"),
        ("cuda:0", "fp16", "fp16"),
        ("cuda:0", "fp32", "fp32"),
        ("cpu", "fp32", "fp32"),
    ],
)
def test_zero_shot_model_loads_in_training_half_precision_on_cuda(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, device: str, precision: str, dtype: str
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_load_model(model, device="auto", dtype="auto"):
        calls.append({"model": model, "device": device, "dtype": dtype})
        raise Stop

    monkeypatch.setattr("asr.train.recipe.load_model", fake_load_model)
    recipe = _bare_recipe(tmp_path, device, precision)
    with pytest.raises(Stop):
        recipe._test_zero_shot()
    assert calls == [{"model": "whisper-tiny", "device": device, "dtype": dtype}]


def test_evaluate_auto_dtype_is_fp16_where_bf16_is_only_emulated(monkeypatch: pytest.MonkeyPatch) -> None:
    from asr.models import pick_dtype

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert pick_dtype(torch.device("cuda"), "auto") == torch.float16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert pick_dtype(torch.device("cuda"), "auto") == torch.bfloat16


@pytest.fixture
def unusable_gpu(monkeypatch: pytest.MonkeyPatch):
    """An NVIDIA GPU and driver 535 (CUDA 12.2) under a torch built for CUDA 13.0: torch cannot use it."""

    def is_available() -> bool:
        import warnings

        warnings.warn(
            "CUDA initialization: The NVIDIA driver on your system is too old (found version 12020)",
            stacklevel=2,
        )
        return False

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(preflight, "nvidia_devices_present", lambda: True)
    monkeypatch.setattr(preflight, "nvidia_driver", lambda: "535.104.05")
    monkeypatch.setattr(torch.cuda, "is_available", is_available)
    monkeypatch.setattr(torch.version, "cuda", "13.0")


def test_device_auto_warns_loudly_when_torch_cannot_use_the_gpu(unusable_gpu, caplog) -> None:
    with pytest.warns(RuntimeWarning, match="device=auto falls back to the CPU") as warned:
        assert device_and_precision(_cfg("device=auto")) == ("cpu", "fp32")
    message = next(str(w.message) for w in warned if w.category is RuntimeWarning)
    assert "driver 535.104.05" in message and "built for CUDA 13.0" in message
    assert "driver on your system is too old (found version 12020)" in message
    assert any(r.levelname == "WARNING" and "SLOWLY" in r.getMessage() for r in caplog.records)


def test_device_cuda_fails_naming_the_mismatch(unusable_gpu) -> None:
    with pytest.raises(ConfigError, match=r"device=cuda: .*driver 535.104.05.*built for CUDA 13.0"):
        device_and_precision(_cfg("device=cuda"))


def test_no_warning_on_a_machine_without_nvidia_gpus(monkeypatch: pytest.MonkeyPatch, recwarn) -> None:
    monkeypatch.setattr(preflight, "nvidia_devices_present", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_and_precision(_cfg("device=auto")) == ("cpu", "fp32")
    assert preflight.cuda_unusable_reason() is None
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    with pytest.raises(ConfigError, match="device=cuda but no CUDA GPU is visible"):
        device_and_precision(_cfg("device=cuda"))
