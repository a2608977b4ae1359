"""Speech encoder + LLM decoder family: Qwen3-ASR and GLM-ASR through transformers.

One class serves both (``Qwen3ASRForConditionalGeneration``, ``GlmAsrForConditionalGeneration``,
loaded with ``AutoModelForSeq2SeqLM``); :mod:`asr.models.audio_llm.prompts` holds what differs.
Decoding runs the model's own processor and chat template, then ``generate`` with the
hallucination guard (LLM decoders loop like Whisper's). Training appends the transcript and
the end-of-turn token to the prompt; only those tokens carry labels.

>>> model = load_model("qwen3-asr-0.6b", device="cpu")  # doctest: +SKIP
>>> model.transcribe([wave], DecodeOptions(language="zh"))  # doctest: +SKIP
['language Chinese<asr_text>今天恰么子饭']
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForSeq2SeqLM, AutoProcessor, LogitsProcessorList

from asr.errors import ConfigError, ModelSourceError
from asr.models.audio_llm import prompts
from asr.models.base import ASRModel
from asr.models.checkpoint import SAMPLE_RATE, checkpoint_dtype, unwrap_peft
from asr.models.guard import cut_repetition, generation_guard
from asr.models.peft_utils import apply_lora, load_with_adapter, save_model_dir
from asr.models.registry import LLM_LORA_TARGETS
from asr.models.spec import DecodeOptions, ModelSpec

log = logging.getLogger(__name__)

# Where the parts sit in both transformers implementations
LLM = r"model\.language_model"
AUDIO = r"model\.audio_tower"
PROJECTOR = r"model\.multi_modal_projector"
AUDIO_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj", "o_proj")
PROJECTOR_LORA_TARGETS = ("linear_1", "linear_2")
# New tokens without the guard: the Qwen3-ASR library's default (its converter writes it too)
DEFAULT_MAX_NEW_TOKENS = 512


def lora_target_pattern(targets: tuple[str, ...] | list[str], scope: str) -> str:
    """A peft ``target_modules`` regex: ``targets`` in the LLM (``scope: decoder``), plus the audio
    encoder's attention projections and the projector (``scope: all``).

    >>> lora_target_pattern(["q_proj"], "decoder")
    'model\\\\.language_model\\\\..*\\\\.(q_proj)'
    """
    pattern = rf"{LLM}\..*\.({'|'.join(targets)})"
    if scope == "all":
        pattern += rf"|{AUDIO}\..*\.({'|'.join(AUDIO_LORA_TARGETS)})|{PROJECTOR}\.({'|'.join(PROJECTOR_LORA_TARGETS)})"
    return pattern


class AudioLLMASR(ASRModel):
    """Qwen3-ASR or GLM-ASR (transformers) with its processor; ``context`` biases Qwen3-ASR."""

    family: ClassVar[str] = "audio_llm"
    default_lora_targets: ClassVar[tuple[str, ...]] = LLM_LORA_TARGETS
    card_tag: ClassVar[str] = "audio-llm"
    peft_base_class: ClassVar[str | None] = "AutoModelForSeq2SeqLM"

    def __init__(self, model: Any, processor: Any, spec: ModelSpec, device, dtype):
        super().__init__(spec, device, dtype)
        self.model = model
        self.processor = processor
        self.model_type: str = self._base().config.model_type
        if self.model_type not in prompts.MODEL_TYPES:
            raise ModelSourceError(
                f"model_type {self.model_type!r} is not a speech-LLM this family knows ({', '.join(prompts.MODEL_TYPES)})"
            )
        # context/hot-word prompt (Qwen3-ASR's system prompt); the registry may give a default
        self.context: str | None = spec.options.get("context")

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> AudioLLMASR:
        model, base_path = load_with_adapter(path, AutoModelForSeq2SeqLM, dtype)
        source = path if (path / "processor_config.json").is_file() else base_path
        processor = AutoProcessor.from_pretrained(source)
        model.to(device).eval()
        loaded = cls(model, processor, spec, device, dtype)
        loaded.save_dtype = checkpoint_dtype(path) or checkpoint_dtype(base_path) or torch.float32
        return loaded

    def save(self, out_dir: Path) -> None:
        save_model_dir(self.model, out_dir, self.family, self.spec, dtype=self.save_dtype)
        self.processor.save_pretrained(out_dir)
        self._base().generation_config.save_pretrained(out_dir)

    def _base(self) -> torch.nn.Module:
        return unwrap_peft(self.model)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    # --- inference ------------------------------------------------------
    def inputs(
        self, waves: list[np.ndarray], language: str | None, context: str | None = None
    ) -> dict[str, torch.Tensor]:
        """Processor output for the generation prompts: token ids (left-padded) and log-mel features.

        ``context``: the decoding's context prompt, else the model's default (:attr:`context`).
        """
        waves = [np.asarray(w, dtype=np.float32) for w in waves]
        text = prompts.prompts(self.model_type, self.processor, waves, language, context or self.context)
        batch = self.processor(text=text, audio=waves, sampling_rate=SAMPLE_RATE, return_tensors="pt")
        batch.pop("num_audio_tokens", None)
        return dict(batch)

    def _to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        device, dtype = self.param_device, self.param_dtype
        return {
            k: v.to(device, dtype) if v.is_floating_point() else v.to(device)
            for k, v in batch.items()
            if isinstance(v, torch.Tensor)
        }

    def stop_ids(self) -> tuple[list[int], int]:
        """The end-of-sequence ids and the one the guard forces (and pads finished rows with)."""
        gc = self._base().generation_config
        eos = gc.eos_token_id if isinstance(gc.eos_token_id, (list, tuple)) else [gc.eos_token_id]
        eos = [int(e) for e in eos if e is not None]
        if not eos:
            raise ModelSourceError(f"{self.spec.name}: the generation config names no eos_token_id")
        return eos, int(gc.pad_token_id) if gc.pad_token_id in eos else eos[0]

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        durations = durations or [len(w) / SAMPLE_RATE for w in waves]
        eos, stop = self.stop_ids()
        batch = self._to_device(self.inputs(waves, options.language, options.context))
        default_max = self._base().generation_config.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
        processors, max_new = generation_guard(durations, options, stop, default_max)
        out = self.model.generate(
            **batch,
            max_new_tokens=max_new,
            num_beams=options.beam_size,
            do_sample=False,
            logits_processor=processors,
            eos_token_id=eos,
            pad_token_id=stop,
        )
        texts = []
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            end = next((i for i, t in enumerate(row) if t in eos), len(row))
            tokens = row[:end]
            if options.guard:
                tokens = cut_repetition(tokens, options.repeat_limit, options.repeat_max_period)
            texts.append(self.processor.tokenizer.decode(tokens, skip_special_tokens=True))
        return texts

    def clean_prediction(self, text: str) -> str:
        return prompts.clean_text(self.model_type, text)

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = options.as_dict()
        settings.update(backend="torch", model_type=self.model_type, context=None)
        if self.model_type == prompts.QWEN3_ASR:  # GLM-ASR takes neither
            settings["forced_language"] = prompts.language_name(options.language)
            settings["context"] = options.context or self.context
        return settings

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        """``lora``: adapters on the LLM's projections (``scope: all`` adds the audio encoder's attention
        and the projector); ``full``: everything; ``decoder``: the LLM only (audio encoder and projector frozen)."""
        base = self._base()
        if method == "lora":
            if self.model is not base:
                raise ConfigError("set_trainable('lora') was already applied to this model")
            lora = dict(lora or {})
            targets = lora.get("targets") or self.lora_targets()
            if not isinstance(targets, str):
                targets = lora_target_pattern(tuple(targets), lora.get("scope", "all"))
            self.model = apply_lora(base, {**lora, "targets": targets, "scope": "all"}, self.lora_targets())
        elif method == "full":
            base.requires_grad_(True)
        elif method == "decoder":
            base.requires_grad_(True)
            base.model.audio_tower.requires_grad_(False)
            base.model.multi_modal_projector.requires_grad_(False)
        else:
            raise ConfigError(f"unknown fine-tuning method {method!r} for speech-LLMs (lora, full, decoder)")

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        """Prompt (audio placeholders expanded) + transcript + end-of-turn, right-padded; labels only on
        the transcript and the end token (prompt, audio and padding are -100)."""
        batch = self.inputs(waves, self.spec.language)
        tok = self.processor.tokenizer
        end = self.stop_ids()[1]  # Qwen3-ASR: <|im_end|>; GLM-ASR: its first end-of-sequence token
        rows, label_rows = [], []
        for ids, mask, text in zip(batch["input_ids"], batch["attention_mask"], texts, strict=True):
            prompt = ids[mask.bool()].tolist()
            target = [*tok(text, add_special_tokens=False).input_ids, end]
            rows.append(prompt + target)
            label_rows.append([-100] * len(prompt) + target)
        width = max(len(r) for r in rows)
        pad = tok.pad_token_id if tok.pad_token_id is not None else end
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        for i, (row, lab) in enumerate(zip(rows, label_rows, strict=True)):
            input_ids[i, : len(row)] = torch.tensor(row)
            labels[i, : len(lab)] = torch.tensor(lab)
            attention[i, : len(row)] = 1
        features = {k: v for k, v in batch.items() if k.startswith("input_features")}
        return {"input_ids": input_ids, "attention_mask": attention, "labels": labels, **features}

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        inputs = self._to_device({k: v for k, v in batch.items() if k != "keys"})
        return self.model(**inputs).loss
