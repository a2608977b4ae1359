"""Whisper family (transformers seq2seq): decoding with the guard, training batches, LoRA."""

from __future__ import annotations

import logging
import math
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

from asr.models.base import SAMPLE_RATE, ASRModel, unwrap_peft
from asr.models.guard import GuardLogitsProcessor, cut_repetition, token_caps
from asr.models.peft_utils import apply_lora, load_with_adapter, save_model_dir
from asr.models.registry import WHISPER_LORA_TARGETS
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


FULL_CONTEXT_FRAMES = 3000  # 30 s of 10 ms log-mel frames


def audio_context_frames(durations: list[float], audio_context: str) -> int:
    """Log-mel frames the encoder sees: 30 s ("full", Whisper's training setup) or, with "auto",
    the batch's longest clip + 1 s (at least 5 s), which cuts encoder work for short clips."""
    if audio_context == "full":
        return FULL_CONTEXT_FRAMES
    if audio_context != "auto":
        from asr.errors import ConfigError

        raise ConfigError(f"audio_context must be full or auto, not {audio_context!r}")
    frames = math.ceil((max(durations) + 1.0) * 100)
    return min(FULL_CONTEXT_FRAMES, max(500, frames + frames % 2))


class WhisperASR(ASRModel):
    """Whisper through transformers. Language/task go through the generation config."""

    family: ClassVar[str] = "whisper"

    def __init__(self, model: Any, processor: WhisperProcessor, spec: ModelSpec, device, dtype):
        self.model = model
        self.processor = processor
        self.spec = spec
        self.device = torch.device(device)
        self.dtype = dtype
        self._encoder_cache: dict[str, torch.Tensor] = {}
        self.path: Path | None = None
        self._ct2: Any = None

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> WhisperASR:
        model, base_path = load_with_adapter(path, WhisperForConditionalGeneration, dtype)
        inner = unwrap_peft(model)
        inner.generation_config = _generation_config(base_path, inner)
        processor = _load_processor(
            path if (path / "preprocessor_config.json").is_file() else base_path, inner.config.num_mel_bins
        )
        model.to(device).eval()
        loaded = cls(model, processor, spec, device, dtype)
        loaded.path = path
        return loaded

    def save(self, out_dir: Path) -> None:
        save_model_dir(self.model, out_dir, self.family, self.spec)
        self.processor.save_pretrained(out_dir)
        self._base().generation_config.save_pretrained(out_dir)

    def _base(self) -> WhisperForConditionalGeneration:
        return unwrap_peft(self.model)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    # --- inference ------------------------------------------------------
    def features(self, waves: list[np.ndarray]) -> torch.Tensor:
        feats = self.processor.feature_extractor(
            waves, sampling_rate=SAMPLE_RATE, return_tensors="pt", device=str(self.device)
        ).input_features
        return feats.to(self.device, self.dtype)

    def set_backend(self, backend: str, compute_type: str | None = None) -> None:
        """``torch`` (transformers generate) or ``ct2`` (CTranslate2, converted once and cached).

        ``compute_type`` for ct2: default int8 on CPU, float16 on GPU.
        """
        if backend == "torch":
            self._ct2 = None
            return
        if backend != "ct2":
            super().set_backend(backend)
        from asr.models.whisper_ct2 import CT2WhisperEngine

        source = self.path
        if (
            source is None
            or hasattr(self.model, "merge_and_unload")
            or (source / "adapter_config.json").is_file()
        ):
            import tempfile

            source = Path(tempfile.mkdtemp(prefix="asr-merged-"))
            self.merged().save_pretrained(source, safe_serialization=True)
            self.processor.save_pretrained(source)
        self._ct2 = CT2WhisperEngine(source, self.device.type, compute_type)

    def merged(self) -> WhisperForConditionalGeneration:
        """A plain transformers model with any LoRA adapter merged in (a copy; self is unchanged)."""
        import copy

        if not hasattr(self.model, "merge_and_unload"):
            return self.model
        return copy.deepcopy(self.model).merge_and_unload()

    def _prompt(self, options: DecodeOptions) -> list[int]:
        tok = self.processor.tokenizer
        names = ["<|startoftranscript|>"]
        if options.language:
            names.append(f"<|{options.language}|>")
        names += [f"<|{options.task}|>", "<|notimestamps|>"]
        return tok.convert_tokens_to_ids(names)

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        durations = durations or [len(w) / SAMPLE_RATE for w in waves]
        if self._ct2 is not None:
            feats = self.processor.feature_extractor(waves, sampling_rate=SAMPLE_RATE, return_tensors="np")
            frames = audio_context_frames(durations, options.audio_context)
            seqs = self._ct2.generate(
                feats.input_features[:, :, :frames],
                self._prompt(options),
                options,
                durations,
                self.max_new_tokens(),
            )
            return [
                self.processor.tokenizer.decode(self._text_tokens(s), skip_special_tokens=True) for s in seqs
            ]
        if options.audio_context != "full":
            from asr.errors import ConfigError

            raise ConfigError(
                "audio_context=auto needs the ct2 backend (transformers' encoder takes 30 s only)"
            )
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
        settings.update(self._ct2.settings() if self._ct2 is not None else {"backend": "torch"})
        return settings

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        base = self._base()
        if method == "lora":
            self.model = apply_lora(base, lora or {}, self.spec.lora_targets or WHISPER_LORA_TARGETS)
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

    def encoder_frozen(self) -> bool:
        """True when no encoder parameter trains and the encoder input is not augmented."""
        base = self._base()
        trains = any(p.requires_grad for p in base.model.encoder.parameters())
        return not trains and not getattr(base.config, "apply_spec_augment", False)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        keys = batch.get("keys")
        if keys is None or not self.module.training or not self.encoder_frozen():
            return self.model(input_features=batch["input_features"], labels=batch["labels"]).loss
        # Frozen, unaugmented encoder: its output per utterance never changes, so compute it once.
        # The engine must make keys unique per input variant (e.g. id + speed factor).
        encoder = self._base().model.encoder
        missing = [i for i, k in enumerate(keys) if k not in self._encoder_cache]
        if missing:
            with torch.no_grad():
                feats = batch["input_features"][missing].to(self.device, self.dtype)
                hidden = encoder(feats).last_hidden_state
            for i, h in zip(missing, hidden, strict=True):
                self._encoder_cache[keys[i]] = h.detach().cpu()  # host memory: ~3 MB per clip (base)
        hidden = torch.stack([self._encoder_cache[k] for k in keys]).to(self.device, self.dtype)
        return self.model(encoder_outputs=(hidden,), labels=batch["labels"]).loss


def build_tiny(out_dir: Path, texts: list[str] | None = None, seed: int = 0) -> Path:
    """A randomly initialised 2-layer Whisper with the real multilingual tokenizer (tests, offline demos)."""
    from transformers import WhisperConfig

    from asr.models.registry import get_spec
    from asr.models.whisper_assets import whisper_generation_config, whisper_processor

    torch.manual_seed(seed)
    processor = whisper_processor(num_mel_bins=80)
    tok = processor.tokenizer
    config = WhisperConfig(
        vocab_size=len(tok),
        num_mel_bins=80,
        d_model=64,
        encoder_layers=2,
        decoder_layers=2,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        max_source_positions=1500,
        max_target_positions=448,
        decoder_start_token_id=tok.convert_tokens_to_ids("<|startoftranscript|>"),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = WhisperForConditionalGeneration(config)
    model.generation_config = whisper_generation_config(config)
    spec = get_spec("whisper-tiny")
    asr_model = WhisperASR(model, processor, spec, "cpu", torch.float32)
    asr_model.save(out_dir)
    return out_dir
