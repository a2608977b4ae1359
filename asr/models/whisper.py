"""Whisper family (transformers seq2seq): decoding with the guard, training batches, LoRA."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import (
    GenerationConfig,
    LogitsProcessorList,
    WhisperForConditionalGeneration,
    WhisperProcessor,
)

from asr.models.base import SAMPLE_RATE, ASRModel
from asr.models.guard import GuardLogitsProcessor, cut_repetition, token_caps
from asr.models.peft_utils import apply_lora, load_with_adapter, save_model_dir
from asr.models.spec import DecodeOptions, ModelSpec

log = logging.getLogger(__name__)


def _load_processor(path: Path, num_mel_bins: int) -> WhisperProcessor:
    if (path / "tokenizer.json").is_file() or (path / "vocab.json").is_file():
        return WhisperProcessor.from_pretrained(path)
    from asr.models.whisper_assets import whisper_processor

    log.info("%s has no tokenizer files; using the offline openai-whisper tokenizer", path)
    return whisper_processor(num_mel_bins=num_mel_bins)


def _generation_config(path: Path, model: WhisperForConditionalGeneration) -> GenerationConfig:
    gc = model.generation_config
    if getattr(gc, "lang_to_id", None) and getattr(gc, "task_to_id", None):
        return gc
    from asr.models.whisper_assets import whisper_generation_config

    log.info("%s lacks a Whisper generation config; building it offline", path)
    return whisper_generation_config(model.config)


class WhisperASR(ASRModel):
    """Whisper through transformers. Language/task go through the generation config."""

    family: ClassVar[str] = "whisper"

    def __init__(self, model: Any, processor: WhisperProcessor, spec: ModelSpec, device, dtype):
        self.model = model
        self.processor = processor
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> WhisperASR:
        model, base_path = load_with_adapter(path, WhisperForConditionalGeneration, dtype)
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        inner.generation_config = _generation_config(base_path, inner)
        processor = _load_processor(
            path if (path / "preprocessor_config.json").is_file() else base_path, inner.config.num_mel_bins
        )
        model.to(device).eval()
        return cls(model, processor, spec, device, dtype)

    def save(self, out_dir: Path) -> None:
        save_model_dir(self.model, out_dir, self.family, self.spec)
        self.processor.save_pretrained(out_dir)
        self._base().generation_config.save_pretrained(out_dir)

    def _base(self) -> WhisperForConditionalGeneration:
        return self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    # --- inference ------------------------------------------------------
    def features(self, waves: list[np.ndarray]) -> torch.Tensor:
        feats = self.processor.feature_extractor(
            waves, sampling_rate=SAMPLE_RATE, return_tensors="pt", device=str(self.device)
        ).input_features
        return feats.to(self.device, self.dtype)

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        durations = durations or [len(w) / SAMPLE_RATE for w in waves]
        gen_kwargs: dict[str, Any] = {
            "task": options.task,
            "return_timestamps": False,
            "num_beams": options.beam_size,
        }
        if options.language:
            gen_kwargs["language"] = options.language
        max_new = self.max_new_tokens()
        processors = LogitsProcessorList()
        if options.guard:
            caps = [min(c, max_new) for c in token_caps(durations, options)]
            eos = self._base().generation_config.eos_token_id
            processors.append(GuardLogitsProcessor(caps, eos, options, options.beam_size))
            max_new = max(caps)
        out = self.model.generate(
            input_features=self.features(waves),
            max_new_tokens=max_new,
            logits_processor=processors,
            **gen_kwargs,
        )
        texts = []
        for seq in out.tolist():
            if options.guard:
                seq = cut_repetition(self._text_tokens(seq), options.repeat_limit, options.repeat_max_period)
            texts.append(self.processor.tokenizer.decode(seq, skip_special_tokens=True))
        return texts

    def _text_tokens(self, seq: list[int]) -> list[int]:
        special = set(self.processor.tokenizer.all_special_ids)
        return [t for t in seq if t not in special]

    def max_new_tokens(self) -> int:
        # 448 positions minus the 4-token prompt (<|startoftranscript|><|zh|><|transcribe|><|notimestamps|>)
        return self._base().config.max_target_positions - 4

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = options.as_dict()
        settings.update(return_timestamps=False, max_new_tokens_cap=self.max_new_tokens())
        return settings

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        base = self._base()
        if method == "lora":
            self.model = apply_lora(base, lora or {}, self.spec.lora_targets)
        elif method == "full":
            base.requires_grad_(True)
        elif method == "decoder":
            base.requires_grad_(True)
            base.model.encoder.requires_grad_(False)
        else:
            raise ValueError(f"unknown fine-tuning method {method!r} (lora, full, decoder)")
        self.configure_language(self.spec.language, self.spec.task)

    def configure_language(self, language: str | None, task: str) -> None:
        """Record language/task/no-timestamps so every later decode (pipeline, export) matches."""
        self.processor.tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
        gc = self._base().generation_config
        gc.language = f"<|{language}|>" if language else None
        gc.task = task
        gc.return_timestamps = False
        gc.forced_decoder_ids = None

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        feats = self.processor.feature_extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        tok = self.processor.tokenizer
        ids = [tok(t).input_ids for t in texts]  # <|sot|><|lang|><|task|><|notimestamps|> text <|eot|>
        start = self._base().config.decoder_start_token_id
        ids = [i[1:] if i and i[0] == start else i for i in ids]  # the model prepends it when shifting
        width = max(len(i) for i in ids)
        labels = torch.full((len(ids), width), -100, dtype=torch.long)
        for row, i in enumerate(ids):
            labels[row, : len(i)] = torch.tensor(i)
        return {"input_features": feats.input_features, "labels": labels}

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(input_features=batch["input_features"], labels=batch["labels"]).loss
