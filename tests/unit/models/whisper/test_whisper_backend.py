"""What ``--backend auto`` resolves to for Whisper (device, ctranslate2 installed or not, a resumed
run's record) and for the other families; no decoding (about 2 s for the tiny model)."""

from __future__ import annotations

import sys

import pytest
import torch

from asr.models.whisper.ct2 import installed


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from asr.models import load_model
    from tests.model_factory import build

    return load_model(build("whisper-tiny", tmp_path_factory.mktemp("tiny")), device="cpu", dtype="fp32")


@pytest.fixture
def no_ct2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ctranslate2", None)


def test_installed_follows_importability(no_ct2: None) -> None:
    assert installed() is False


def test_cpu_with_ctranslate2_is_ct2_int8(tiny_whisper) -> None:
    pytest.importorskip("ctranslate2")
    assert installed() is True
    assert tiny_whisper.auto_backend() == ("ct2", {"compute_type": "int8"})


def test_cpu_without_ctranslate2_is_torch(tiny_whisper, no_ct2: None) -> None:
    assert tiny_whisper.auto_backend() == ("torch", {})


def test_gpu_is_torch_in_the_loaded_half_precision(tiny_whisper, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tiny_whisper, "device", torch.device("cuda:0"))
    assert tiny_whisper.auto_backend() == ("torch", {})


def test_a_resumed_run_keeps_its_recorded_backend_where_available(tiny_whisper, monkeypatch) -> None:
    pytest.importorskip("ctranslate2")
    assert tiny_whisper.auto_backend({"backend": "torch"}) == ("torch", {})
    assert tiny_whisper.auto_backend({"beam_size": 1}) == ("torch", {})  # nothing recorded: torch
    recorded_ct2 = {"backend": "ct2", "compute_type": "float32"}
    assert tiny_whisper.auto_backend(recorded_ct2) == ("ct2", {"compute_type": "float32"})
    monkeypatch.setitem(sys.modules, "ctranslate2", None)  # recorded ct2, not installed now: a fresh choice
    assert tiny_whisper.auto_backend(recorded_ct2) == ("torch", {})


def test_set_backend_auto_without_ctranslate2_leaves_the_torch_path(tiny_whisper, no_ct2: None) -> None:
    from asr.models.spec import DecodeOptions

    tiny_whisper.set_backend("auto")
    assert tiny_whisper.decoding_settings(DecodeOptions())["backend"] == "torch"
    assert "compute_type" not in tiny_whisper.decoding_settings(DecodeOptions())


def test_other_families_resolve_auto_to_torch_and_refuse_ct2(tmp_path) -> None:
    from asr.errors import ConfigError
    from asr.models import load_model
    from tests.model_factory import build

    model = load_model(build("xlsr-53-zh", tmp_path / "ctc", texts=["你好"]), device="cpu", dtype="fp32")
    assert model.auto_backend({"backend": "ct2"}) == ("torch", {})
    model.set_backend("auto")
    with pytest.raises(ConfigError, match="no 'ct2' backend"):
        model.set_backend("ct2")
