"""The speech-LLM family on tiny random Qwen3-ASR and GLM-ASR models: prompts, markers, guard, LoRA, batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.models import DecodeOptions, load_model
from asr.models.audio_llm.model import AudioLLMASR
from asr.models.audio_llm.prompts import clean_text, language_name
from asr.models.checkpoint import MARKER_FILE
from asr.models.registry import LLM_LORA_TARGETS, get_spec
from tests.model_factory.audio_llm import build_tiny

TEXTS = ["长沙话好恰咯", "hello 世界 123", "口味虾还冇剥完咧"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module", params=["qwen3_asr", "glmasr"])
def tiny_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp(request.param) / "model", TEXTS, kind=request.param)


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("qwen") / "model", TEXTS, kind="qwen3_asr")


@pytest.fixture(scope="module")
def glm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny(tmp_path_factory.mktemp("glm") / "model", TEXTS, kind="glmasr")


def _waves(seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(round(s * 16000))).astype(np.float32) for s in seconds]


def _prompt(model: AudioLLMASR, language: str | None = "zh") -> str:
    ids = model.inputs(_waves([1.0]), language)["input_ids"][0]
    return model.processor.tokenizer.decode(ids)


def test_registry_entries() -> None:
    for name, hub_id, licence in (
        ("qwen3-asr-0.6b", "Qwen/Qwen3-ASR-0.6B-hf", "apache-2.0"),
        ("qwen3-asr-1.7b", "Qwen/Qwen3-ASR-1.7B-hf", "apache-2.0"),
        ("glm-asr-nano", "zai-org/GLM-ASR-Nano-2512", "mit"),
    ):
        spec = get_spec(name)
        assert (spec.family, spec.hub_id, spec.license.id) == ("audio_llm", hub_id, licence)
        assert spec.lora_targets == LLM_LORA_TARGETS


def test_tiny_models_load_through_their_config(tiny_dir: Path) -> None:
    (tiny_dir / MARKER_FILE).unlink()  # a Hub folder has no marker: the family comes from config.json
    model = load_model(str(tiny_dir), device="cpu")
    assert isinstance(model, AudioLLMASR) and model.model_type in ("qwen3_asr", "glmasr")


def test_qwen3_prompt_forces_the_language_and_carries_the_context(qwen_dir: Path) -> None:
    model = load_model(str(qwen_dir), device="cpu")
    prompt = _prompt(model)
    assert prompt.startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\n<|audio_start|><|audio_pad|>")
    assert prompt.endswith("<|audio_end|><|im_end|>\n<|im_start|>assistant\nlanguage Chinese<asr_text>")
    assert _prompt(model, "yue").endswith("assistant\nlanguage Cantonese<asr_text>")
    assert _prompt(model, None).endswith("<|im_start|>assistant\n")  # the model names the language
    ids = model.inputs(_waves([1.0]), "zh", context="坡子街")["input_ids"][0]
    assert model.processor.tokenizer.decode(ids).startswith("<|im_start|>system\n坡子街<|im_end|>\n")
    model.context = "长沙话：岳麓山，橘子洲"  # a default (registry options) when the decoding gives none
    assert _prompt(model).startswith("<|im_start|>system\n长沙话：岳麓山，橘子洲<|im_end|>\n")
    settings = model.decoding_settings(DecodeOptions())
    assert settings["context"] == "长沙话：岳麓山，橘子洲" and settings["forced_language"] == "Chinese"


def test_glm_prompt_is_the_transcription_request(glm_dir: Path) -> None:
    model = load_model(str(glm_dir), device="cpu")
    prompt = _prompt(model)
    assert prompt.startswith("<|user|>\n<|begin_of_audio|><|pad|>")
    assert prompt.endswith("<|end_of_audio|><|user|>\nPlease transcribe this audio into text<|assistant|>\n")
    # 1 s: 100 mel frames -> 50 after the stride-2 conv -> 12 tokens after merging 4 frames
    assert prompt.count("<|pad|>") == 12


def test_marker_cleaning() -> None:
    assert clean_text("qwen3_asr", "language Chinese<asr_text>长沙话好恰咯 ") == "长沙话好恰咯"
    assert clean_text("qwen3_asr", "language None<asr_text>") == ""
    assert clean_text("qwen3_asr", " 长沙话") == "长沙话"  # forced language: no prefix
    assert clean_text("glmasr", " 长沙话 ") == "长沙话"
    assert language_name("ZH") == "Chinese" and language_name("xiang") is None


def test_transcribe_greedy_and_beam(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    waves = _waves([0.4, 1.3, 2.0])
    greedy = model.transcribe(waves, DecodeOptions())
    assert len(greedy) == 3 and all(isinstance(t, str) for t in greedy)
    assert greedy == [model.transcribe([w], DecodeOptions())[0] for w in waves]  # batching changes nothing
    assert len(model.transcribe(waves, DecodeOptions(beam_size=3))) == 3


def _looping(model: AudioLLMASR) -> str:
    """Make the decoder emit token 0 forever (all logits equal: greedy takes the first id)."""
    head = model._base().lm_head
    torch.nn.init.zeros_(head.weight)
    return model.processor.tokenizer.convert_ids_to_tokens(0)


def test_guard_stops_a_looping_decoder(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    token = _looping(model)
    waves = _waves([1.0, 2.0])
    unguarded = model.transcribe(waves, DecodeOptions(guard=False))
    assert unguarded == [token * 24] * 2  # the generation config's max_new_tokens
    # repetition rule: stopped after 8 copies of a 1-token pattern, then cut to one copy
    assert model.transcribe(waves, DecodeOptions()) == [token] * 2
    beams = model.transcribe(waves, DecodeOptions(beam_size=2))  # ties: any one token, repeated
    assert [len(t) for t in beams] == [1, 1]
    # length rule: ceil(1 token/s x duration) + 2 new tokens when repetition is not checked
    capped = DecodeOptions(max_tokens_per_second=1.0, min_new_tokens=2, repeat_limit=100)
    assert model.transcribe(waves, capped) == [token * 3, token * 4]


def test_lora_targets_the_llm_projections(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    model.set_trainable("lora", {"r": 4, "scope": "decoder"})
    adapted = {n.split(".lora_A")[0] for n, p in model.module.named_parameters() if "lora_A" in n}
    assert all(".language_model." in n for n in adapted)
    assert {n.rsplit(".", 1)[1] for n in adapted} == set(LLM_LORA_TARGETS)
    assert not any(p.requires_grad for n, p in model.module.named_parameters() if "lora_" not in n)

    model = load_model(str(tiny_dir), device="cpu")
    model.set_trainable("lora", {"r": 4, "scope": "all"})
    adapted = {n.split(".lora_A")[0] for n, p in model.module.named_parameters() if "lora_A" in n}
    assert any(".audio_tower." in n for n in adapted)
    assert any(n.endswith("multi_modal_projector.linear_1") for n in adapted)


def test_decoder_method_freezes_the_audio_side(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    model.set_trainable("decoder")
    trains = {n.split(".")[1] for n, p in model.module.named_parameters() if p.requires_grad}
    assert "language_model" in trains and not trains & {"audio_tower", "multi_modal_projector"}


def test_collate_labels_only_the_transcript(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    tok = model.processor.tokenizer
    batch = model.collate(_waves([0.6, 1.5]), ["长沙话", "hello 世界"])
    for row, text in enumerate(["长沙话", "hello 世界"]):
        ids, labels, mask = batch["input_ids"][row], batch["labels"][row], batch["attention_mask"][row]
        kept = labels[labels != -100].tolist()
        end = tok.convert_ids_to_tokens(kept[-1])
        assert tok.decode(kept[:-1]) == text and end in ("<|im_end|>", "<|endoftext|>")
        n = int(mask.sum())
        assert ids[n - len(kept) : n].tolist() == kept  # the labelled tokens end the sequence
        assert (mask[n:] == 0).all() and (labels[n:] == -100).all()  # right padding
        audio = model._base().config.audio_token_id
        assert (ids == audio).any() and (labels[ids == audio] == -100).all()
    loss = model.loss(batch)
    assert torch.isfinite(loss) and loss.item() > 0


def test_save_and_reload_with_a_lora_adapter(tiny_dir: Path, tmp_path: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    model.set_trainable("lora", {"r": 4, "scope": "decoder"})
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.5)  # a trained adapter changes the output
    model.module.eval()  # peft leaves the module in training mode (LoRA dropout)
    waves = _waves([1.2])
    before = model.transcribe(waves, DecodeOptions())
    model.save(tmp_path / "ckpt")
    marker = json.loads((tmp_path / "ckpt" / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["family"] == "audio_llm" and marker["adapter"] is True
    reloaded = load_model(str(tmp_path / "ckpt"), device="cpu")
    assert reloaded.transcribe(waves, DecodeOptions()) == before
    assert reloaded.merge_lora()
    assert reloaded.transcribe(waves, DecodeOptions()) == before


def test_training_targets_are_what_decoding_emits(tiny_dir: Path) -> None:
    """Overfit two clips: greedy decoding then writes a training transcript and stops, so collate's
    prompt and labels line up with the prompt transcribe builds. (Two noise clips are hard to tell
    apart for a tiny encoder; either transcript counts.)"""
    model = load_model(str(tiny_dir), device="cpu")
    model.set_trainable("full")
    texts = ["长沙话好恰咯", "口味虾还冇剥完咧"]
    waves = _waves([1.0, 1.5], seed=1)
    batch = model.collate(waves, texts)
    optimizer = torch.optim.Adam(model.module.parameters(), lr=1e-2)
    model.module.train()
    for _ in range(25):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 1.0
    model.module.eval()
    assert set(model.transcribe(waves, DecodeOptions())) <= set(texts)
