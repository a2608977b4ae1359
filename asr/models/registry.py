"""Named models and the family implementations behind them.

Adding a model is one :class:`ModelSpec` entry in ``MODELS``; adding a family is one
module plus one line in ``FAMILIES``.

>>> get_spec("whisper-small").hub_id
'openai/whisper-small'
"""

from __future__ import annotations

import importlib

from asr.errors import ModelSourceError
from asr.models.spec import ModelSpec

FAMILIES: dict[str, str] = {
    "whisper": "asr.models.whisper:WhisperASR",
    "ctc": "asr.models.ctc:CTCASR",
    "funasr": "asr.models.funasr_models:FunASRModel",
}

WHISPER_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")
_SANM_LORA = ("linear_q_k_v", "linear_out", "linear_q", "linear_k_v")


def _whisper(name: str, hub_id: str, eval_bs: int, train_bs: int, lr_full: float, desc: str) -> ModelSpec:
    return ModelSpec(
        name=name,
        family="whisper",
        hub_id=hub_id,
        lora_targets=WHISPER_LORA_TARGETS,
        eval_batch_size=eval_bs,
        train_batch_size=train_bs,
        learning_rate={"lora": 1e-3, "full": lr_full, "decoder": lr_full},
        description=desc,
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
            lora_targets=("q_proj", "k_proj", "v_proj", "out_proj"),
            eval_batch_size=16,
            train_batch_size=8,
            learning_rate={"lora": 1e-3, "full": 3e-5},
            description="wav2vec2 XLS-R 53 fine-tuned on Mandarin (CTC, characters)",
        ),
        ModelSpec(
            name="paraformer-large",
            family="funasr",
            hub_id=None,  # the Hub's funasr/paraformer-zh is SeACo-Paraformer, a different model
            modelscope_id="iic/speech_paraformer-large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
            lora_targets=_SANM_LORA,
            eval_batch_size=32,
            train_batch_size=16,
            learning_rate={"lora": 1e-3, "full": 5e-5},
            description="Paraformer-large, non-autoregressive Mandarin ASR (funasr)",
        ),
        ModelSpec(
            name="sensevoice-small",
            family="funasr",
            hub_id="FunAudioLLM/SenseVoiceSmall",
            modelscope_id="iic/SenseVoiceSmall",
            language="zh",
            lora_targets=_SANM_LORA,
            eval_batch_size=32,
            train_batch_size=16,
            learning_rate={"lora": 1e-3, "full": 5e-5},
            description="SenseVoice small, multilingual ASR with emotion/event tags (funasr)",
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


def family_class(family: str) -> type:
    """Import the :class:`~asr.models.base.ASRModel` subclass of a family."""
    if family not in FAMILIES:
        raise ModelSourceError(f"unknown model family {family!r}; known: {', '.join(FAMILIES)}")
    module, _, cls = FAMILIES[family].partition(":")
    return getattr(importlib.import_module(module), cls)
