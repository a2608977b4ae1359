"""Fun-ASR-Nano on a tiny random model: offline loading, prompt, marker cleaning, the guard, training batch, LoRA."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr.errors import ConfigError, ModelSourceError
from asr.models import load_model
from asr.models.funasr.fun_asr_nano import FunASRNanoASR, clean_nano_text, prompt_language, read_config
from asr.models.sources import detect_family
from asr.models.spec import DecodeOptions
from tests.model_factory import build

TEXTS = ["今天恰么子饭啰", "岳麓山橘子洲"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("fun-asr-nano", tmp_path_factory.mktemp("nano") / "model", texts=TEXTS)


@pytest.fixture
def model(tiny: Path) -> FunASRNanoASR:
    loaded = load_model(str(tiny), device="cpu")
    assert isinstance(loaded, FunASRNanoASR)
    return loaded


def _wave(seconds: float, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)


def test_clean_markers() -> None:
    assert clean_nano_text("<think>\n\n</think>\n\n今天 /sil 恰么子饭<|im_end|>") == "今天恰么子饭"
    assert clean_nano_text("<|endoftext|>ok 好 的") == "ok 好的"


def test_prompt_language() -> None:
    assert (
        prompt_language("zh") == "中文" and prompt_language(None) is None and prompt_language("auto") is None
    )
    with pytest.raises(ConfigError, match="not one of"):
        prompt_language("xx")


def test_layout_and_family(tiny: Path) -> None:
    assert {p.name for p in tiny.iterdir()} >= {"config.yaml", "model.safetensors", "Qwen3-0.6B"}
    assert detect_family(tiny)[0] == "fun_asr_nano"
    config = yaml.safe_load((tiny / "config.yaml").read_text(encoding="utf-8"))
    assert config["llm_conf"]["init_param_path"] == "Qwen3-0.6B"  # relative, as the release writes it
    assert Path(read_config(tiny)["llm_conf"]["init_param_path"]) == tiny / "Qwen3-0.6B"


def test_refuses_modelscope_encoder(tiny: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((tiny / "config.yaml").read_text(encoding="utf-8"))
    config["audio_encoder"] = "iic/SenseVoiceSmall"
    config["audio_encoder_conf"]["hub"] = "ms"
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    with pytest.raises(ModelSourceError, match="ModelScope"):
        read_config(tmp_path)


def test_transcribe_batch_matches_single(model: FunASRNanoASR) -> None:
    waves = [_wave(1.0, 1), _wave(1.6, 2)]
    options = DecodeOptions(language="zh")
    batch = model.transcribe(waves, options)
    single = [model.transcribe([w], options)[0] for w in waves]
    assert batch == single
    settings = model.decoding_settings(options)
    assert settings["prompt"] == "语音转写成中文，不进行文本规整：" and settings["guard"] is True


def test_context_becomes_the_hotword_list(model: FunASRNanoASR) -> None:
    options = DecodeOptions(language="zh", context="岳麓山，橘子洲\n坡子街")
    settings = model.decoding_settings(options)
    assert settings["context"] == "岳麓山，橘子洲\n坡子街"
    assert "热词列表：[岳麓山, 橘子洲, 坡子街]\n语音转写成中文" in settings["prompt"]
    assert model.decoding_settings(DecodeOptions(language=None))["prompt"] == "语音转写，不进行文本规整："
    plain = model.transcribe([_wave(1.0)], DecodeOptions(language="zh"))
    assert len(model.transcribe([_wave(1.0)], options)) == len(plain) == 1


def test_guard_caps_a_looping_decoder(model: FunASRNanoASR) -> None:
    """An LLM that always predicts the same token is cut to one copy of its loop, within the cap."""
    loop = model.tokenizer.encode("岳")[0]  # an ordinary BPE token

    def always_loop(module: torch.nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
        return out + 1e4 * torch.nn.functional.one_hot(torch.tensor(loop), out.shape[-1]).to(out.dtype)

    model.net.llm.lm_head.register_forward_hook(always_loop)
    guarded = model.transcribe([_wave(1.0)], DecodeOptions(language="zh"))[0]
    unguarded = model.transcribe([_wave(1.0)], DecodeOptions(language="zh", guard=False))[0]
    assert guarded == model.tokenizer.decode([loop])  # stopped by the repetition rule, cut to one copy
    assert unguarded == model.tokenizer.decode([loop] * 512)  # runs to funasr's max_length


def test_collate_labels_only_transcript(model: FunASRNanoASR) -> None:
    batch = model.collate([_wave(1.0), _wave(0.5)], TEXTS)
    end = model.tokenizer.convert_tokens_to_ids("<|im_end|>")
    for row, text in zip(batch["labels_ids"], TEXTS, strict=True):
        labelled = row[row != -100].tolist()
        assert labelled == [*model.tokenizer.encode(text), end]
    assert batch["fake_token_len"].shape == (2, 1) and batch["speech"].shape[-1] == 560


def test_lora_targets_the_llm_only(model: FunASRNanoASR) -> None:
    model.set_trainable("lora", {"r": 4, "alpha": 8, "scope": "decoder"})
    trainable = [n for n, p in model.module.named_parameters() if p.requires_grad]
    assert trainable and all(".llm." in n and "lora_" in n for n in trainable)
    projections = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert projections == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    loss = model.loss(model.collate([_wave(1.0)], TEXTS[:1]))
    loss.backward()
    assert torch.isfinite(loss)
    assert any(p.grad is not None for n, p in model.module.named_parameters() if "lora_B" in n)


def test_lora_scope_all_adds_the_adaptor(model: FunASRNanoASR) -> None:
    model.set_trainable("lora", {"r": 4, "alpha": 8, "scope": "all"})
    trainable = [n for n, p in model.module.named_parameters() if p.requires_grad]
    assert any(".audio_adaptor." in n for n in trainable) and not any(
        ".audio_encoder." in n for n in trainable
    )
    with pytest.raises(ConfigError, match="already applied"):
        model.set_trainable("full")


def test_half_precision_llm_keeps_the_encoder_fp32(tiny: Path) -> None:
    """bf16 (what a GPU load picks): the LLM in bf16, encoder and adaptor fp32 as funasr runs them."""
    model = FunASRNanoASR.load(
        tiny, load_model(str(tiny), device="cpu").spec, torch.device("cpu"), torch.bfloat16
    )
    assert model.net.llm.dtype == torch.bfloat16 and model.net.llm_dtype == "bf16"
    assert next(model.net.audio_encoder.parameters()).dtype == torch.float32
    texts = model.transcribe([_wave(1.0), _wave(0.7, 3)], DecodeOptions(language="zh", beam_size=2))
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    model.set_trainable("lora", {"r": 4, "alpha": 8, "scope": "decoder"})
    assert torch.isfinite(model.loss(model.collate([_wave(1.0)], TEXTS[:1])))
    assert model.save_dtype == torch.float32  # the checkpoint's dtype, not the decode cast
