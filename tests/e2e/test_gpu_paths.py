"""Defects that show only on a GPU (or under DeepSpeed), checked on the CPU with tiny random models.

- collate builds CPU batches (DataLoader workers fork; pin_memory); loss()/transcribe() move them.
- A cast of the module (DeepSpeed bf16, a half-precision decode) is followed at use time, and
  save() still writes the checkpoint's own dtype (fp32 here).
- Whisper's frozen-encoder cache holds half precision within a byte budget.
- ``--backend ct2``: device index, torch weights off the GPU, fp32 LoRA merge, content-keyed cache.
- SpecAugment from a funasr config.yaml can be switched off.

A module cast to bfloat16 on the CPU stands in for DeepSpeed's cast; a patched ``device`` /
``param_device`` stands in for a GPU where only the placement logic matters.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch
import yaml

from asr.errors import ConfigError
from asr.models import load_model
from asr.models.checkpoint import safetensors_dtype
from asr.models.spec import DecodeOptions
from tests.model_factory.funasr import SPECAUG_CONF

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

TEXTS = ["长沙话好恰咯", "今天恰么子饭", "口味虾还冇剥完咧"]
ZH = DecodeOptions(language="zh")
HAS_FUNASR = importlib.util.find_spec("funasr") is not None
needs_funasr = pytest.mark.skipif(not HAS_FUNASR, reason="funasr extra not installed")
needs_ct2 = pytest.mark.skipif(
    importlib.util.find_spec("ctranslate2") is None, reason="ct2 extra not installed"
)


@pytest.fixture(autouse=True)
def asr_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ct2-cache per test."""
    home = tmp_path / "asr-home"
    monkeypatch.setenv("ASR_HOME", str(home))
    return home


def _waves(seconds=(0.8, 1.3, 1.0), seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(round(s * 16000))).astype(np.float32) for s in seconds]


@pytest.fixture(scope="module")
def ctc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model_factory import build

    return build("xlsr-53-zh", tmp_path_factory.mktemp("gpu-ctc") / "model", texts=TEXTS)


@pytest.fixture(scope="module")
def funasr_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAS_FUNASR:
        pytest.skip("funasr extra not installed")
    from tests.model_factory import FUNASR_KINDS, build

    root = tmp_path_factory.mktemp("gpu-funasr")
    return {
        kind: build(FUNASR_KINDS[kind], root / kind, texts=TEXTS) for kind in ("paraformer", "sensevoice")
    }


@pytest.fixture(scope="module")
def whisper_lora_dir(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter checkpoint on the tiny Whisper, with non-zero adapter weights."""
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    torch.manual_seed(0)
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    out = tmp_path_factory.mktemp("gpu-whisper-lora") / "adapter"
    model.save(out)
    assert (out / "adapter_config.json").is_file()
    return out


def _model_dirs(request: pytest.FixtureRequest, family: str) -> Path:
    if family == "whisper":
        return request.getfixturevalue("tiny_whisper")
    if family == "ctc":
        return request.getfixturevalue("ctc_dir")
    return request.getfixturevalue("funasr_dirs")[family]


FAMILIES = ["whisper", "ctc", pytest.param("paraformer", marks=needs_funasr)]
FAMILIES += [pytest.param("sensevoice", marks=needs_funasr)]


def _train_batch(model, texts=TEXTS) -> dict[str, Any]:
    batch = dict(model.collate(_waves(), list(texts)))
    batch["keys"] = [f"utt{i}" for i in range(len(texts))]
    return batch


def _set_trainable(model, family: str) -> None:
    model.set_trainable("full")
    model.module.train()


# --- 1. collate returns CPU tensors; loss() moves them -------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_collate_stays_on_cpu_while_the_model_says_cuda(family: str, request: pytest.FixtureRequest) -> None:
    model = load_model(str(_model_dirs(request, family)), device="cpu", dtype="fp32")
    _set_trainable(model, family)
    model.device = torch.device("cuda:0")  # what the trainer sets; no GPU here, so nothing may go there
    batch = _train_batch(model)
    tensors = {k: v for k, v in batch.items() if isinstance(v, torch.Tensor)}
    assert tensors and all(v.device.type == "cpu" for v in tensors.values()), {
        k: v.device for k, v in tensors.items()
    }
    assert all(v.dtype in (torch.float32, torch.long, torch.int32, torch.int64) for v in tensors.values())
    # loss() takes the batch to where the weights are (their device and dtype, not the attribute)
    seen: list[torch.Tensor] = []
    hook = model.module.register_forward_pre_hook(
        lambda mod, args, kwargs: seen.extend(
            v for v in list(args) + list(kwargs.values()) if isinstance(v, torch.Tensor)
        ),
        with_kwargs=True,
    )
    try:
        loss = model.loss(batch)
    finally:
        hook.remove()
    assert torch.isfinite(loss)
    floats = [t for t in seen if t.is_floating_point()]
    assert floats and all(t.device == model.param_device and t.dtype == model.param_dtype for t in floats)


# --- 2. a cast module (DeepSpeed bf16) decodes and trains; save() writes fp32 -------------------


def _tensor_dtypes(path: Path) -> set[str]:
    header_size = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_size])
    return {v["dtype"] for k, v in header.items() if k != "__metadata__"}


@pytest.mark.parametrize("family", FAMILIES)
def test_bf16_cast_module_runs_and_saves_fp32(
    family: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    model = load_model(str(_model_dirs(request, family)), device="cpu", dtype="fp32")
    assert model.save_dtype == torch.float32
    _set_trainable(model, family)
    model.module.to(torch.bfloat16)  # what DeepSpeed's bf16 engine does to the module
    assert model.param_dtype == torch.bfloat16 and model.dtype == torch.float32
    loss = model.loss(_train_batch(model))
    assert loss.ndim == 0 and torch.isfinite(loss.float())
    loss.backward()
    model.module.eval()
    texts = model.transcribe(_waves(), ZH, durations=[0.8, 1.3, 1.0])
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    model.save(tmp_path / "saved")
    weights = "model.safetensors"
    assert _tensor_dtypes(tmp_path / "saved" / weights) == {"F32"}
    config = tmp_path / "saved" / "config.json"
    if config.is_file():
        assert json.loads(config.read_text())["dtype"] == "float32"
    assert model.param_dtype == torch.bfloat16  # saving does not undo the training cast


def test_whisper_frozen_encoder_cache_under_bf16(tiny_whisper: Path) -> None:
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.set_trainable("decoder")
    model.module.to(torch.bfloat16).train()
    loss = model.loss(_train_batch(model))
    assert torch.isfinite(loss.float()) and len(model._encoder_cache) == 3


def test_whisper_cross_kv_cache_under_bf16(tiny_whisper: Path) -> None:
    """freeze_cross_kv in a bf16 training cast: the cached K/V enter the cache in the model's dtype
    and a second step reads them back (same loss)."""
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.freeze_cross_attention_kv()
    model.set_trainable("decoder")
    model.module.to(torch.bfloat16).train()
    batch = _train_batch(model)
    first = model.loss(batch)
    assert torch.isfinite(first.float()) and all(k.endswith(":cross-kv") for k in model._encoder_cache)
    assert len(model._encoder_cache) == 3
    assert float(model.loss(batch)) == pytest.approx(float(first), rel=1e-3)


def test_lora_adapter_and_funasr_merge_save_fp32(tiny_whisper: Path, tmp_path: Path) -> None:
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    model.module.to(torch.bfloat16)
    model.save(tmp_path / "whisper-lora")
    assert _tensor_dtypes(tmp_path / "whisper-lora" / "adapter_model.safetensors") == {"F32"}


@needs_funasr
@pytest.mark.parametrize("kind", ["paraformer", "sensevoice"])
def test_funasr_lora_merge_is_fp32(kind: str, funasr_dirs: dict[str, Path], tmp_path: Path) -> None:
    model = load_model(str(funasr_dirs[kind]), device="cpu", dtype="fp32")
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    exact = tmp_path / "fp32"
    model.save(exact)  # merged in fp32
    model.module.to(torch.bfloat16)
    cast = tmp_path / "bf16"
    model.save(cast)
    assert _tensor_dtypes(cast / "model.safetensors") == {"F32"}
    from safetensors.torch import load_file

    want, got = load_file(str(exact / "model.safetensors")), load_file(str(cast / "model.safetensors"))
    key = "encoder.encoders0.0.self_attn.linear_q_k_v.weight"
    # the bf16 cast rounds base and adapter once; the merge itself adds no bf16 rounding
    base = load_file(str(funasr_dirs[kind] / "model.safetensors"))[key]
    assert not torch.equal(want[key], base)
    assert torch.allclose(got[key], want[key], rtol=1e-2, atol=1e-3)


# --- 3. the frozen-encoder cache: half precision, capped ----------------------------------------


def test_encoder_cache_is_half_precision_and_capped(tiny_whisper: Path) -> None:
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.set_trainable("decoder")
    model.module.train()
    assert model.encoder_frozen()
    batch = _train_batch(model)
    with torch.no_grad():
        want = model.loss({k: v for k, v in batch.items() if k != "keys"}).item()  # no cache
    entry = 1500 * model._base().config.d_model * 2  # one clip's encoder output in fp16
    model.encoder_cache_bytes = int(2.5 * entry)  # room for two of the three clips
    with torch.no_grad():
        first = model.loss(batch).item()
        second = model.loss(batch).item()  # two from the cache, one encoded again
    cache = model._encoder_cache
    assert len(cache) == 2
    assert all(t.dtype in (torch.float16, torch.bfloat16) and t.device.type == "cpu" for t in cache.values())
    total = sum(t.numel() * t.element_size() for t in cache.values())
    assert total <= model.encoder_cache_bytes and model._encoder_cache_used == total
    assert first == pytest.approx(want, rel=1e-3) and second == pytest.approx(want, rel=1e-3)
    assert second == first


def test_encoder_cache_budget_from_the_environment(tiny_whisper: Path, monkeypatch) -> None:
    monkeypatch.setenv("ASR_ENCODER_CACHE_BYTES", "0")
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    assert model.encoder_cache_bytes == 0
    model.set_trainable("decoder")
    model.module.train()
    with torch.no_grad():
        model.loss(_train_batch(model))
    assert model._encoder_cache == {}
    monkeypatch.delenv("ASR_ENCODER_CACHE_BYTES")
    assert load_model(str(tiny_whisper), device="cpu", dtype="fp32").encoder_cache_bytes == 2 << 30


# --- 5. --backend ct2 ----------------------------------------------------------------------------


class FakeCT2Whisper:
    """Stands in for ctranslate2.models.Whisper (which would need a GPU for device='cuda')."""

    created: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, path: str, **kwargs: Any) -> None:
        FakeCT2Whisper.created.append({"path": path, **kwargs})


@needs_ct2
def test_ct2_uses_the_device_index_and_frees_the_gpu(
    tiny_whisper: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ctranslate2

    from asr.models.whisper.model import WhisperASR

    FakeCT2Whisper.created = []
    monkeypatch.setattr(ctranslate2.models, "Whisper", FakeCT2Whisper)
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.device = torch.device("cuda:1")
    # the torch weights "are" on the GPU: record where set_backend sends them
    monkeypatch.setattr(WhisperASR, "param_device", property(lambda self: torch.device("cuda:1")))
    moves: list[Any] = []
    monkeypatch.setattr(model.model, "to", lambda *a, **k: moves.append((a, k)) or model.model)
    model.set_backend("ct2")
    made = FakeCT2Whisper.created[-1]
    assert made["device"] == "cuda" and made["device_index"] == 1 and made["compute_type"] == "float16"
    assert moves == [(("cpu",), {})]  # the torch copy leaves the GPU
    model.set_backend("torch")  # and comes back for torch decoding
    monkeypatch.setattr(WhisperASR, "param_device", property(lambda self: torch.device("cpu")))
    model.set_backend("torch")
    assert moves[-1] == ((torch.device("cuda:1"),), {})


@needs_ct2
def test_ct2_lora_merge_is_fp32_from_the_checkpoint(whisper_lora_dir: Path) -> None:
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration

    model = load_model(str(whisper_lora_dir), device="cpu", dtype="bf16")
    assert model.param_dtype == torch.bfloat16
    merged = model.merged()
    assert {p.dtype for p in merged.parameters()} == {torch.float32}
    assert {p.device.type for p in merged.parameters()} == {"cpu"}
    adapter_cfg = json.loads((whisper_lora_dir / "adapter_config.json").read_text())
    base = WhisperForConditionalGeneration.from_pretrained(adapter_cfg["base_model_name_or_path"])
    exact = PeftModel.from_pretrained(base, str(whisper_lora_dir)).merge_and_unload()
    key = "model.decoder.layers.0.self_attn.q_proj.weight"
    assert torch.equal(merged.state_dict()[key], exact.state_dict()[key])
    assert model.param_dtype == torch.bfloat16  # the loaded model is left alone
    # a LoRA model only in memory: copied to fp32 on the CPU, then merged
    model.module.to(torch.bfloat16)
    model.path = None
    assert {p.dtype for p in model.merged().parameters()} == {torch.float32}


@needs_ct2
def test_ct2_cache_is_keyed_by_content(whisper_lora_dir: Path, tiny_whisper: Path, asr_home: Path) -> None:
    cache = asr_home / "ct2-cache"

    def entries() -> list[str]:
        return sorted(p.name for p in cache.iterdir() if not p.name.startswith("."))

    paths = []
    for _ in range(2):  # two runs of `asr evaluate --backend ct2` on one LoRA checkpoint
        model = load_model(str(whisper_lora_dir), device="cpu", dtype="fp32")
        model.set_backend("ct2")
        paths.append(model._ct2.path)
    assert paths[0] == paths[1] and len(entries()) == 1
    texts = model.transcribe(_waves(), ZH)
    assert len(texts) == 3
    # a LoRA model in memory is merged into a fresh temporary folder each time: same key
    trained = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    torch.manual_seed(0)
    trained.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    trained.set_backend("ct2")
    first = trained._ct2.path
    trained.set_backend("ct2")
    assert trained._ct2.path == first and len(entries()) == 2


@needs_ct2
def test_ct2_missing_cuda12_libraries_is_a_clear_error(tiny_whisper: Path, monkeypatch) -> None:
    import ctranslate2

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    monkeypatch.setattr(ctranslate2.models, "Whisper", fail)
    model = load_model(str(tiny_whisper), device="cpu", dtype="fp32")
    model.device = torch.device("cuda")
    with pytest.raises(ConfigError) as info:
        model.set_backend("ct2")
    text = str(info.value)
    assert "libcublas.so.12" in text and "--backend torch" in text and "nvidia-cublas-cu12" in text
    assert "CUDA 12" in text and "cudnn" in text.lower()


# --- 6. SpecAugment from a funasr config.yaml can be turned off ---------------------------------


SPECAUG = {"specaug": "SpecAugLFR", "specaug_conf": SPECAUG_CONF}  # as in the published configs


@needs_funasr
@pytest.mark.parametrize("kind", ["paraformer", "sensevoice"])
def test_funasr_spec_augment_can_be_disabled(
    kind: str, funasr_dirs: dict[str, Path], tmp_path: Path, monkeypatch
) -> None:
    import shutil

    src = tmp_path / "with-specaug"
    shutil.copytree(funasr_dirs[kind], src)
    config = yaml.safe_load((src / "config.yaml").read_text(encoding="utf-8"))
    (src / "config.yaml").write_text(
        yaml.safe_dump({**config, **SPECAUG}, allow_unicode=True), encoding="utf-8"
    )
    model = load_model(str(src), device="cpu", dtype="fp32")
    specaug = model.net.specaug
    assert specaug is not None
    calls: list[int] = []
    original = type(specaug).forward
    monkeypatch.setattr(
        type(specaug), "forward", lambda self, *a, **k: calls.append(1) or original(self, *a, **k)
    )
    model.set_trainable("full")
    model.module.train()
    batch = _train_batch(model)
    model.loss(batch)
    assert calls == [1]  # on: config.yaml's SpecAugLFR masks training features
    assert model.disable_spec_augment() is True
    model.loss(batch)
    assert calls == [1]  # off
    model.save(tmp_path / "saved")  # the checkpoint keeps its own setting for later runs
    assert yaml.safe_load((tmp_path / "saved" / "config.yaml").read_text())["specaug"] == "SpecAugLFR"
    assert model.enable_spec_augment() is True
    model.loss(batch)
    assert calls == [1, 1]


def test_transformers_spec_augment_can_be_disabled(ctc_dir: Path) -> None:
    model = load_model(str(ctc_dir), device="cpu", dtype="fp32")
    assert model.enable_spec_augment() is True and model.module.config.apply_spec_augment
    assert model.disable_spec_augment() is True and not model.module.config.apply_spec_augment


def test_safetensors_dtype_reads_the_header(tiny_whisper: Path) -> None:
    assert safetensors_dtype(tiny_whisper / "model.safetensors") == torch.float32
