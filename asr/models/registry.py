"""Named models and the family implementations behind them.

Adding a model is one :class:`ModelSpec` entry in ``MODELS``; adding a family is one
module plus one line in ``FAMILIES``.

>>> get_spec("whisper-small").hub_id
'openai/whisper-small'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from asr.errors import ModelSourceError
from asr.models.spec import License, ModelSpec

if TYPE_CHECKING:
    from asr.models.base import ASRModel

FAMILIES: dict[str, str] = {
    "whisper": "asr.models.whisper.model:WhisperASR",
    "ctc": "asr.models.ctc.model:CTCASR",
    "funasr": "asr.models.funasr.model:FunASRModel",
    "audio_llm": "asr.models.audio_llm.model:AudioLLMASR",
    "fun_asr_nano": "asr.models.funasr.fun_asr_nano:FunASRNanoASR",
}

DEFAULT_MODEL = "whisper-base"  # what `asr finetune` trains when the config names no model

# LoRA target modules, the one definition (families default to these for unregistered models).
# transformers attention projections (Whisper, wav2vec2):
ATTENTION_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
# funasr SANM attention linears: self-attention (encoders) and cross-attention (Paraformer decoder)
SANM_LORA_TARGETS = ("linear_q_k_v", "linear_out", "linear_q", "linear_k_v")
# LLM attention and MLP projections (Qwen3, Llama/GLM decoders of the speech-LLMs)
LLM_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

# Licences as the Hub states them. Whisper: apache-2.0 on the Hub's openai/whisper-* checkpoints
# (OpenAI's original code and weights release is MIT).
APACHE_2 = License("apache-2.0")
MIT = License("mit")  # GLM-ASR-Nano-2512's Hub metadata
# Fun-ASR-Nano-2512: apache-2.0 as stated by FunAudioLLM's official packaging of the same tensors
# (huggingface.co/FunAudioLLM/Fun-ASR-Nano-2512-vllm: "bitwise equal to the tensors in the official
# source model.pt"); the main repository's card was not reachable here to confirm it.
FUNASR_NANO_LICENSE = APACHE_2
FUNASR_LICENSE = License(
    "other", "funasr-model-license", "https://github.com/modelscope/FunASR/blob/main/MODEL_LICENSE"
)


def _whisper(name: str, hub_id: str, eval_bs: int, train_bs: int, lr_full: float, desc: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="whisper",
        hub_id=hub_id,
        lora_targets=ATTENTION_LORA_TARGETS,
        eval_batch_size=eval_bs,
        train_batch_size=train_bs,
        learning_rate={"lora": 1e-3, "full": lr_full, "decoder": lr_full},
        description=desc,
        license=APACHE_2,
    )


def _funasr(name: str, hub_id: str | None, modelscope_id: str, desc: str, **extra: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="funasr",
        hub_id=hub_id,
        modelscope_id=modelscope_id,
        lora_targets=SANM_LORA_TARGETS,
        eval_batch_size=32,
        train_batch_size=16,
        learning_rate={"lora": 1e-3, "full": 5e-5},
        description=desc,
        license=FUNASR_LICENSE,
        **extra,
    )


def _audio_llm(name: str, hub_id: str, eval_bs: int, train_bs: int, desc: str, license: License) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="audio_llm",
        hub_id=hub_id,
        lora_targets=LLM_LORA_TARGETS,
        eval_batch_size=eval_bs,
        train_batch_size=train_bs,
        learning_rate={"lora": 2e-4, "full": 1e-5, "decoder": 1e-5},
        description=desc,
        license=license,
    )


MODELS: dict[str, ModelSpec] = {
    s.name: s
    for s in (
        _whisper("whisper-tiny", "openai/whisper-tiny", 32, 32, 3.75e-5, "Whisper tiny (39M), multilingual"),
        _whisper("whisper-base", "openai/whisper-base", 32, 16, 2.5e-5, "Whisper base (74M), multilingual"),
        _whisper("whisper-small", "openai/whisper-small", 16, 16, 1.25e-5, "Whisper small (244M)"),
        _whisper(
            "whisper-large-v3-turbo",
            "openai/whisper-large-v3-turbo",
            8,
            4,
            5e-6,
            "Whisper large-v3 turbo (809M)",
        ),
        _whisper("whisper-large-v3", "openai/whisper-large-v3", 4, 2, 4.4e-6, "Whisper large-v3 (1.55B)"),
        ModelSpec(
            name="xlsr-53-zh",
            family="ctc",
            hub_id="jonatasgrosman/wav2vec2-large-xlsr-53-chinese-zh-cn",
            lora_targets=ATTENTION_LORA_TARGETS,
            eval_batch_size=16,
            train_batch_size=8,
            learning_rate={"lora": 1e-3, "full": 3e-5},
            description="wav2vec2 XLS-R 53 fine-tuned on Mandarin (CTC, characters)",
            license=APACHE_2,
        ),
        _funasr(
            "paraformer-large",
            None,  # the Hub's funasr/paraformer-zh is SeACo-Paraformer, a different model
            "iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
            "Paraformer-large, non-autoregressive Mandarin ASR (funasr)",
        ),
        _funasr(
            "sensevoice-small",
            "FunAudioLLM/SenseVoiceSmall",
            "iic/SenseVoiceSmall",
            "SenseVoice small, multilingual ASR with emotion/event tags (funasr)",
            language="zh",
        ),
        _audio_llm(
            "qwen3-asr-0.6b",
            "Qwen/Qwen3-ASR-0.6B-hf",
            8,
            4,
            "Qwen3-ASR 0.6B: audio encoder + Qwen3 LLM, 30 languages and 22 Chinese dialects",
            APACHE_2,
        ),
        _audio_llm(
            "qwen3-asr-1.7b",
            "Qwen/Qwen3-ASR-1.7B-hf",
            4,
            2,
            "Qwen3-ASR 1.7B: audio encoder + Qwen3 LLM, 30 languages and 22 Chinese dialects",
            APACHE_2,
        ),
        _audio_llm(
            "glm-asr-nano",
            "zai-org/GLM-ASR-Nano-2512",
            4,
            2,
            "GLM-ASR-Nano-2512 (1.5B): Whisper-style encoder + GLM (Llama) LLM, Mandarin, Cantonese, dialects",
            MIT,
        ),
        ModelSpec(
            name="fun-asr-nano",
            family="fun_asr_nano",
            hub_id="FunAudioLLM/Fun-ASR-Nano-2512",
            modelscope_id="FunAudioLLM/Fun-ASR-Nano-2512",
            lora_targets=LLM_LORA_TARGETS,
            eval_batch_size=8,
            train_batch_size=4,
            learning_rate={"lora": 2e-4, "full": 1e-5, "decoder": 1e-5},
            description="Fun-ASR-Nano-2512 (0.8B): SenseVoice encoder + Qwen3-0.6B LLM, 31 languages, 7 dialects incl. Xiang (funasr)",
            license=FUNASR_NANO_LICENSE,
        ),
    )
}


def unknown_model(name: str) -> ModelSourceError:
    return ModelSourceError(
        f"unknown model {name!r}; registered models: {', '.join(MODELS)} "
        "(or pass a local checkpoint directory or a Hub id like org/name)"
    )


def get_spec(name: str) -> ModelSpec:
    """The registered spec for ``name``; a clear error lists the known names."""
    if name not in MODELS:
        raise unknown_model(name)
    return MODELS[name]


def family_classes() -> list[type[ASRModel]]:
    """The class of every registered family (for the options and flags each declares)."""
    return [family_class(family) for family in FAMILIES]


def family_class(family: str) -> type[ASRModel]:
    """Import the :class:`~asr.models.base.ASRModel` subclass of a family.

    >>> family_class("whisper").supports_ct2
    True
    """
    if family not in FAMILIES:
        raise ModelSourceError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module, _, cls = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), cls)
