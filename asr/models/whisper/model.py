"""Whisper family (transformers seq2seq): decoding with the guard, training batches, LoRA."""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import GenerationConfig, WhisperForConditionalGeneration, WhisperProcessor

from asr.io import read_json, write_text
from asr.models.base import ASRModel
from asr.models.checkpoint import SAMPLE_RATE, checkpoint_dtype, unwrap_peft
from asr.models.guard import cut_repetition, token_caps
from asr.models.peft_utils import (
    apply_lora,
    is_peft,
    load_with_adapter,
    merge_lora,
    save_model_dir,
)
from asr.models.registry import ATTENTION_LORA_TARGETS
from asr.models.spec import DecodeOptions, ModelSpec
from asr.models.whisper.context import (
    FULL_CONTEXT_FRAMES,
    GENERATION_KEY,
    STOCK_CONTEXT,
    audio_context_frames,
    consistency_loss,
    encode,
    parse_audio_context,
    saved_context,
    teacher_states,
)
from asr.models.whisper.cross_kv import (
    CROSS_KV_PATTERN,
    cross_kv_cache,
    cross_kv_cacheable,
    freeze_cross_kv,
    placeholder_encoder_output,
    project_cross_kv,
)
from asr.models.whisper.decoding import DecodeLimits, Prompt, TorchWhisperDecoder, WhisperDecoder
from asr.models.whisper.options import (
    PACKING_BY_DEFAULT_BACKENDS,
    WhisperDecodeOptions,
    WhisperTrainOptions,
    add_decode_arguments,
    decode_options,
)
from asr.models.whisper.packing import PackingStats, transcribe_packed

log = logging.getLogger(__name__)


def _load_processor(path: Path, num_mel_bins: int) -> WhisperProcessor:
    if (path / "tokenizer.json").is_file() or (path / "vocab.json").is_file():
        return WhisperProcessor.from_pretrained(path)
    from asr.models.whisper.assets import whisper_processor

    log.info("%s has no tokenizer files; using the offline openai-whisper tokenizer", path)
    return whisper_processor(num_mel_bins=num_mel_bins)


def _own_generation_config(path: Path, fallback: GenerationConfig) -> Any:
    """A LoRA checkpoint's own generation config (its base's lacks the fine-tuned settings)."""
    own = path / "generation_config.json"
    return GenerationConfig.from_pretrained(path) if own.is_file() else fallback


def _generation_config(path: Path, model: WhisperForConditionalGeneration) -> GenerationConfig:
    gc = model.generation_config
    if getattr(gc, "lang_to_id", None) and getattr(gc, "task_to_id", None):
        return gc
    from asr.models.whisper.assets import whisper_generation_config

    log.info("%s lacks a Whisper generation config; building it offline", path)
    return whisper_generation_config(model.config)


def language_code(value: str | None) -> str | None:
    """A Whisper language token or name as its code.

    >>> language_code("<|zh|>"), language_code("chinese"), language_code(None)
    ('zh', 'zh', None)
    """
    from asr.models.whisper.assets import LANGUAGES

    if not value:
        return None
    code = value.strip().removeprefix("<|").removesuffix("|>").lower()
    if code in LANGUAGES:
        return code
    by_name = {name: c for c, name in LANGUAGES.items()}
    return by_name.get(code, code)


def finetuned_language(checkpoint: Path, spec: ModelSpec) -> tuple[str | None, str]:
    """Language and task a checkpoint was fine-tuned for (its generation config, else the spec)."""
    gen = checkpoint / "generation_config.json"
    language, task = spec.language, spec.task
    if gen.is_file():
        data = read_json(gen)
        language = language_code(data.get("language")) or language
        task = data.get("task") or task
    return language, task


def _generation_json(data: dict[str, Any], language: str | None, task: str) -> dict[str, Any]:
    """Generation-config keys that decode ``language``/``task`` without timestamps."""
    return {
        **data,
        "language": f"<|{language}|>" if language else None,
        "task": task,
        "return_timestamps": False,
        "forced_decoder_ids": None,
    }


# Frozen-encoder cache (see WhisperASR.loss): host-memory budget, bytes. whisper-small's output for one
# 30 s window is 1500 x 768 values, 2.3 MB in fp16, so the default holds ~900 clips.
ENCODER_CACHE_BYTES_ENV = "ASR_ENCODER_CACHE_BYTES"
DEFAULT_ENCODER_CACHE_BYTES = 2 << 30
FP16_MAX = 65504.0


def encoder_cache_budget() -> int:
    """``$ASR_ENCODER_CACHE_BYTES`` (0 turns the cache off), else 2 GiB."""
    raw = os.environ.get(ENCODER_CACHE_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_ENCODER_CACHE_BYTES
    try:
        return max(0, int(float(raw)))
    except ValueError:
        from asr.errors import ConfigError

        raise ConfigError(f"{ENCODER_CACHE_BYTES_ENV}={raw!r}: expected a number of bytes") from None


def half_for_cache(hidden: torch.Tensor) -> torch.Tensor:
    """Encoder output for the host cache: fp16 (11 significant bits; Whisper's encoder ends in a
    LayerNorm, so its outputs are far inside fp16's range), bf16 if a value would overflow fp16."""
    hidden = hidden.detach()
    if hidden.dtype in (torch.float16, torch.bfloat16):
        return hidden.cpu()
    if bool(torch.isfinite(hidden).all()) and float(hidden.abs().max()) < FP16_MAX:
        return hidden.to("cpu", torch.float16)
    return hidden.to("cpu", torch.bfloat16)


def previous_text_ids(tokenizer: Any, context: str | None, max_target_positions: int) -> tuple[int, ...]:
    """``<|startofprev|>`` and ``context``'s tokens (whitespace collapsed, a leading space as
    openai-whisper encodes its ``initial_prompt``), of which at most the last
    ``max_target_positions // 2 - 1`` (223) are kept, as openai-whisper and transformers do;
    empty without a context."""
    text = " ".join((context or "").split())
    if not text:
        return ()
    ids = tokenizer.encode(" " + text, add_special_tokens=False)
    keep = max_target_positions // 2 - 1
    if len(ids) > keep:
        log.warning("context of %d tokens: Whisper keeps its last %d as the prompt", len(ids), keep)
    return (tokenizer.convert_tokens_to_ids("<|startofprev|>"), *ids[-keep:])


class WhisperASR(ASRModel):
    """Whisper through transformers. Language/task go through the generation config."""

    max_audio_seconds: ClassVar[float | None] = (
        30.0  # the encoder's window (asr.data.windows cuts longer clips)
    )
    family: ClassVar[str] = "whisper"
    default_lora_targets: ClassVar[tuple[str, ...]] = ATTENTION_LORA_TARGETS
    card_tag: ClassVar[str] = "whisper"
    peft_base_class: ClassVar[str | None] = "WhisperForConditionalGeneration"
    supports_ct2: ClassVar[bool] = True
    decode_options_class: ClassVar[type[DecodeOptions]] = WhisperDecodeOptions
    train_options_class: ClassVar[type] = WhisperTrainOptions

    def __init__(self, model: Any, processor: WhisperProcessor, spec: ModelSpec, device, dtype):
        super().__init__(spec, device, dtype)
        self.model = model
        self.processor = processor
        # frozen-encoder outputs by utterance key, half precision in host memory (see loss())
        self._encoder_cache: dict[str, torch.Tensor] = {}
        self._encoder_cache_used = 0  # bytes
        self.encoder_cache_bytes = encoder_cache_budget()  # cap; set the attribute to change it
        self.path: Path | None = None
        self.base_path: Path | None = None  # where the base weights of a LoRA checkpoint are
        self._ct2: Any = None
        self.packing_stats = PackingStats()
        # Decoding default (a checkpoint's own, see whisper_context) and training context
        self.audio_context = STOCK_CONTEXT
        self.train_context = "full"
        self.consistency_weight = 0.0
        self.cross_kv_frozen = False  # freeze_cross_kv: see whisper_cross_kv

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
        loaded.base_path = base_path
        loaded.save_dtype = checkpoint_dtype(path) or checkpoint_dtype(base_path) or torch.float32
        own = _own_generation_config(path, inner.generation_config)
        loaded.audio_context = saved_context(own)
        if getattr(own, GENERATION_KEY, None):  # keep it in what save()/export writes (a LoRA base lacks it)
            setattr(inner.generation_config, GENERATION_KEY, loaded.audio_context)
        return loaded

    def save(self, out_dir: Path) -> None:
        save_model_dir(self.model, out_dir, self.family, self.spec, dtype=self.save_dtype)
        self.processor.save_pretrained(out_dir)
        self._base().generation_config.save_pretrained(out_dir)

    def _base(self) -> WhisperForConditionalGeneration:
        return unwrap_peft(self.model)

    # --- export -----------------------------------------------------------
    def save_export(self, out_dir: Path) -> None:
        """Decode the fine-tuned language/task by default; add ``preprocessor_config.json``
        (read by older transformers and by faster-whisper)."""
        if self.path is not None:
            self.configure_language(*finetuned_language(self.path, self.spec))
        else:
            self.configure_language(self.spec.language, self.spec.task)
        self.save(out_dir)
        self.processor.feature_extractor.save_pretrained(out_dir)

    @classmethod
    def finish_adapter_export(cls, checkpoint: Path, spec: ModelSpec, out_dir: Path) -> None:
        """Point the copied generation config at the fine-tuned language/task, no timestamps."""
        path = out_dir / "generation_config.json"
        if not path.is_file():
            return
        data = _generation_json(read_json(path), *finetuned_language(checkpoint, spec))
        write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")

    @classmethod
    def convert_ct2(cls, model_dir: Path, out_dir: Path, quantization: str) -> Path:
        """CTranslate2 copy for faster-whisper (tokenizer and preprocessor files next to ``model.bin``)."""
        from asr.models.whisper.ct2 import convert_checkpoint

        return convert_checkpoint(model_dir, out_dir, quantization, require_files=True)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    # --- inference ------------------------------------------------------
    def features(self, waves: list[np.ndarray], frames: int = FULL_CONTEXT_FRAMES) -> torch.Tensor:
        device = self.param_device
        feats = self.log_mel(waves, frames, return_tensors="pt", device=str(device))
        return feats.to(device, self.param_dtype)

    def log_mel(self, waves: list[np.ndarray], frames: int = FULL_CONTEXT_FRAMES, **kwargs: Any) -> Any:
        """Log-mel features padded to ``frames`` (not 30 s): equal to the first ``frames`` of the 30 s
        features, as the context always ends after the audio (Whisper's per-clip normalisation
        takes the maximum, which padding never holds), at a third of the cost for a 10 s context."""
        extractor = self.processor.feature_extractor
        return extractor(
            waves, sampling_rate=SAMPLE_RATE, max_length=frames * extractor.hop_length, **kwargs
        ).input_features

    def auto_backend(self, recorded: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        """On the CPU CTranslate2 int8 when ctranslate2 is installed (the ``ct2`` extra), else torch
        fp32 (torch's dynamic int8 quantization of the Linear layers was measured worse: higher
        CER, see BENCHMARKS.md "Decoding backend"); on a GPU torch in the fp16/bf16 that
        ``--dtype auto`` loads (the ctranslate2 wheels need CUDA 12 libraries the pinned torch
        lacks). Resuming, the recorded engine where it is available (none recorded: torch).
        """
        from asr.models.whisper.ct2 import installed

        if recorded is not None:
            name = recorded.get("backend", "torch")
            if name == "torch" or (name == "ct2" and installed()):
                return name, {"compute_type": recorded.get("compute_type")} if name == "ct2" else {}
        if self.device.type == "cpu" and installed():
            return "ct2", {"compute_type": "int8"}
        return "torch", {}

    def _use_backend(self, backend: str, compute_type: str | None = None) -> None:
        """``torch`` (transformers generate) or ``ct2`` (CTranslate2, converted once and cached).

        ``compute_type`` for ct2: default int8 on CPU, float16 on GPU. The CTranslate2 model runs
        on :attr:`device` (its index too: ``cuda:1``); on a GPU the torch weights then move to
        the CPU (``set_backend("torch")`` brings them back). The cache key is the checkpoint's
        content, so a LoRA model is merged and converted once, not on every run.
        """
        if backend == "torch":
            self._ct2 = None
            if self.param_device != self.device:
                self.model.to(self.device)
            return
        if backend != "ct2":
            super()._use_backend(backend)
        from asr.models.whisper.ct2 import CT2WhisperEngine, content_fingerprint, default_compute_type

        compute_type = compute_type or default_compute_type(self.device)
        source = self.path
        if source is not None and not is_peft(self.model) and not (source / "adapter_config.json").is_file():
            self._ct2 = CT2WhisperEngine(source, self.device, compute_type)
        elif source is not None and is_peft(self.model) and (source / "adapter_config.json").is_file():
            # a LoRA checkpoint as loaded: key by adapter + base files, merge only when not cached
            key = content_fingerprint(source, *([self.base_path] if self.base_path else []))
            self._ct2 = CT2WhisperEngine(
                None, self.device, compute_type, key=key, write_hf=self._write_merged
            )
        else:
            # weights only in memory (e.g. LoRA applied for training): merge, then key by the merged files
            import tempfile

            with tempfile.TemporaryDirectory(prefix="asr-merged-") as tmp:  # converted, then not needed
                self._write_merged(Path(tmp))
                key = content_fingerprint(Path(tmp))
                self._ct2 = CT2WhisperEngine(Path(tmp), self.device, compute_type, key=key)
        self._release_torch_weights()

    def _release_torch_weights(self) -> None:
        """With CTranslate2 decoding on a GPU, keep the torch copy off it (both would hold the weights)."""
        if self.device.type != "cuda" or self.param_device.type == "cpu":
            return
        self.model.to("cpu")
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _write_merged(self, out_dir: Path) -> None:
        """Full fp32 weights with any LoRA merged (see :meth:`merged`) plus the processor, into ``out_dir``."""
        merged = self.merged()
        merged.save_pretrained(out_dir, safe_serialization=True)
        self.processor.save_pretrained(out_dir)
        del merged

    def merged(self) -> WhisperForConditionalGeneration:
        """A plain fp32 CPU transformers model with any LoRA adapter merged in (self is unchanged).

        A LoRA checkpoint is reloaded from its files in fp32 (the loaded module may be bf16 on a
        GPU, and merging there would round the merged weights to bf16 before a float16
        conversion); a model trained in memory is copied to the CPU in fp32, then merged.
        """
        source = self.path
        if source is not None and is_peft(self.model) and (source / "adapter_config.json").is_file():
            fresh, _ = load_with_adapter(source, WhisperForConditionalGeneration, torch.float32)
            merged = merge_lora(fresh)
            merged.generation_config = self._base().generation_config
        else:
            merged = merge_lora(self.model, copy=True, dtype=torch.float32, device="cpu")
        return merged.eval()

    def decode_prompt(self, options: DecodeOptions) -> Prompt:
        """The prompt of ``options`` for :meth:`decoder`: language, task, and ``options.context``
        as Whisper's previous-text prompt (see :func:`previous_text_ids`)."""
        tok = self.processor.tokenizer
        names = ["<|startoftranscript|>"]
        if options.language:
            names.append(f"<|{options.language}|>")
        names.append(f"<|{options.task}|>")
        ids = tuple(tok.convert_tokens_to_ids(names))
        return Prompt(
            options.language,
            options.task,
            ids,
            tok.convert_tokens_to_ids("<|notimestamps|>"),
            previous_text_ids(tok, options.context, self._base().config.max_target_positions),
        )

    def decoder(self) -> WhisperDecoder:
        """The backend :meth:`~asr.models.base.ASRModel.set_backend` chose: CTranslate2, else transformers."""
        return self._ct2 if self._ct2 is not None else TorchWhisperDecoder(self.model, self._base())

    def decoder_features(self, waves: list[np.ndarray], frames: int = FULL_CONTEXT_FRAMES) -> Any:
        """Log-mel as :meth:`decoder` takes it: numpy for CTranslate2, a tensor on the model's device."""
        if self._ct2 is not None:
            return self.log_mel(waves, frames, return_tensors="np")
        return self.features(waves, frames)

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        options = self.decode_options(options)
        durations = durations or [len(w) / SAMPLE_RATE for w in waves]
        if len(waves) > 1 and self.packs(options):
            alone = replace(options, packing=False, audio_context="full")
            return transcribe_packed(
                self, waves, alone, durations, gap_s=options.packing_gap_s, stats=self.packing_stats
            )
        frames = audio_context_frames(durations, self.decode_context(options))
        prompt = self.decode_prompt(options)
        cap = self.max_new_tokens(prompt)
        caps = [min(c, cap) for c in token_caps(durations, options)] if options.guard else [cap] * len(waves)
        seqs = self.decoder().generate(
            self.decoder_features(waves, frames),
            prompt,
            DecodeLimits.of(caps, options),
            timestamps=False,
        )
        texts = []
        for seq in seqs:
            if options.guard:
                seq = cut_repetition(self._text_tokens(seq), options.repeat_limit, options.repeat_max_period)
            texts.append(self.processor.tokenizer.decode(seq, skip_special_tokens=True))
        return texts

    def decode_context(self, options: DecodeOptions) -> str:
        """The context asked for, else the one the checkpoint was fine-tuned for (stock: ``auto``);
        packing decodes 30 s windows."""
        options = self.decode_options(options)
        if options.packing and not options.audio_context:
            return "full"
        return parse_audio_context(options.audio_context or self.audio_context)

    def packs(self, options: DecodeOptions) -> bool:
        """Whether batches decode packed: ``--packing``/``--no-packing``, else wherever the context
        is 30 s on a backend of :data:`asr.models.whisper.options.PACKING_BY_DEFAULT_BACKENDS`."""
        options = self.decode_options(options)
        if options.packing is not None:
            return options.packing
        backend = "torch" if self._ct2 is None else "ct2"
        return backend in PACKING_BY_DEFAULT_BACKENDS and self.decode_context(options) == "full"

    def decode_stats(self) -> dict[str, Any]:
        return self.packing_stats.as_dict() if self.packing_stats.windows else {}

    def reset_decode_stats(self) -> None:
        self.packing_stats = PackingStats()

    def _text_tokens(self, seq: list[int]) -> list[int]:
        special = set(self.processor.tokenizer.all_special_ids)
        return [t for t in seq if t not in special]

    def max_new_tokens(self, prompt: Prompt | None = None) -> int:
        """448 positions minus the prompt: <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>
        (4 tokens, always counted) and the previous text of a context."""
        previous = len(prompt.previous) if prompt is not None else 0
        return self._base().config.max_target_positions - 4 - previous

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        options = self.decode_options(options)
        settings = options.as_dict()
        prompt = self.decode_prompt(options)
        settings.update(
            audio_context=self.decode_context(options),
            packing=self.packs(options),
            return_timestamps=self.packs(options),
            max_new_tokens_cap=self.max_new_tokens(prompt),
            context_prompt_tokens=len(prompt.previous),  # <|startofprev|> + the context's tokens
        )
        settings.update(self._ct2.settings() if self._ct2 is not None else {"backend": "torch"})
        return settings

    # --- options --------------------------------------------------------
    @classmethod
    def add_decode_arguments(cls, parser: argparse.ArgumentParser) -> None:
        add_decode_arguments(parser)

    def decode_options(
        self, shared: DecodeOptions, args: argparse.Namespace | None = None
    ) -> WhisperDecodeOptions:
        return decode_options(shared, self.spec.task, args)

    def configure_training(self, options: WhisperTrainOptions) -> None:
        if options.freeze_cross_kv:
            self.freeze_cross_attention_kv()
        self.set_audio_context(options.audio_context, options.consistency_weight)

    def training_setup_warnings(self) -> list[str]:
        if self.cross_kv_frozen and not self.encoder_frozen():
            return [
                "freeze_cross_kv=true with a training (or augmented) encoder: the cross-attention key/value "
                "projections are frozen but nothing can be cached (use method=decoder or lora.scope=decoder)"
            ]
        return []

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        base = self._base()
        if method == "lora":
            lora = {**(lora or {}), "exclude": CROSS_KV_PATTERN} if self.cross_kv_frozen else lora
            self.model = apply_lora(base, lora or {}, self.lora_targets())
        elif method == "full":
            base.requires_grad_(True)
        elif method == "decoder":
            base.requires_grad_(True)
            base.model.encoder.requires_grad_(False)
        else:
            raise ValueError(f"unknown fine-tuning method {method!r} (lora, full, decoder)")
        if self.cross_kv_frozen:
            freeze_cross_kv(base.model.decoder)
        self.configure_language(self.spec.language, self.spec.task)

    def freeze_cross_attention_kv(self) -> None:
        """Keep the decoder's cross-attention key/value projections frozen (and without LoRA) in
        :meth:`set_trainable`; with a frozen encoder their output is then cached per clip."""
        self.cross_kv_frozen = True
        freeze_cross_kv(self._base().model.decoder)

    def set_audio_context(self, audio_context: str, consistency_weight: float = 0.0) -> None:
        """Train at ``audio_context`` and record it in the generation config, so the saved
        checkpoint decodes at it by default. ``consistency_weight`` adds that times the mean
        squared distance between the short-context encoder states and the 30 s ones of the
        original model (LoRA: adapters disabled; full fine-tuning: the current encoder) to the loss."""
        self.audio_context = self.train_context = parse_audio_context(audio_context)
        self.consistency_weight = float(consistency_weight)
        setattr(self._base().generation_config, GENERATION_KEY, self.audio_context)

    def configure_language(self, language: str | None, task: str) -> None:
        """Record language/task/no-timestamps so every later decode (pipeline, export) matches."""
        self.processor.tokenizer.set_prefix_tokens(language=language, task=task, predict_timestamps=False)
        gc = self._base().generation_config
        for key, value in _generation_json({}, language, task).items():
            setattr(gc, key, value)

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        """Log-mel at the training context (see :meth:`set_audio_context`) and label ids.

        With a consistency term the 30 s features travel too (``context_frames`` says where
        the short context ends), as the full-context target needs them.
        """
        frames = audio_context_frames([len(w) / SAMPLE_RATE for w in waves], self.train_context)
        context: dict[str, torch.Tensor] = {}
        if frames < FULL_CONTEXT_FRAMES and self.consistency_weight > 0:
            context["context_frames"] = torch.tensor(frames)
        feats = self.log_mel(waves, FULL_CONTEXT_FRAMES if context else frames, return_tensors="pt")
        tok = self.processor.tokenizer
        ids = [tok(t).input_ids for t in texts]  # <|sot|><|lang|><|task|><|notimestamps|> text <|eot|>
        start = self._base().config.decoder_start_token_id
        ids = [i[1:] if i and i[0] == start else i for i in ids]  # the model prepends it when shifting
        width = max(len(i) for i in ids)
        labels = torch.full((len(ids), width), -100, dtype=torch.long)
        for row, i in enumerate(ids):
            labels[row, : len(i)] = torch.tensor(i)
        return {"input_features": feats, "labels": labels, **context}

    def encoder_frozen(self) -> bool:
        """True when no encoder parameter trains and the encoder input is not augmented."""
        base = self._base()
        trains = any(p.requires_grad for p in base.model.encoder.parameters())
        return not trains and not getattr(base.config, "apply_spec_augment", False)

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        device, dtype = self.param_device, self.param_dtype
        feats = batch["input_features"]
        frames = int(batch.get("context_frames", feats.shape[-1]))
        labels = batch["labels"].to(device)
        keys = batch.get("keys")
        if keys is not None and self.module.training and self.encoder_frozen():
            if cross_kv_cacheable(self._base().model.decoder):
                return self._loss_from_cached_cross_kv(feats[:, :, :frames], keys, labels)
            hidden = self._cached_encoder_outputs(feats[:, :, :frames], keys)
            return self.model(encoder_outputs=(hidden,), labels=labels).loss
        if frames == FULL_CONTEXT_FRAMES:
            return self.model(input_features=feats.to(device, dtype), labels=labels).loss
        encoder = self._base().model.encoder
        hidden = encode(encoder, feats[:, :, :frames].to(device, dtype))
        loss = self.model(encoder_outputs=(hidden,), labels=labels).loss
        if self.consistency_weight > 0 and self.module.training and feats.shape[-1] == FULL_CONTEXT_FRAMES:
            if keys is not None and is_peft(self.model) and not self._base().config.apply_spec_augment:
                target = self._cached_teacher_states(feats, keys, hidden.shape[1])
                return loss + self.consistency_weight * torch.nn.functional.mse_loss(
                    hidden.float(), target.float()
                )
            teacher = self.model.disable_adapter() if is_peft(self.model) else None  # the original model
            loss = loss + self.consistency_weight * consistency_loss(
                encoder, hidden, feats.to(device, dtype), teacher
            )
        return loss

    def _cached_teacher_states(self, feats: torch.Tensor, keys: list[str], frames: int) -> torch.Tensor:
        """The consistency target of LoRA training: the original encoder's 30 s states over the
        first ``frames`` frames. The original model does not change, so each clip's target is
        computed once (a 30 s forward) and kept in the encoder cache."""
        encoder = self._base().model.encoder
        device, dtype = self.param_device, self.param_dtype
        rows = self._per_clip(
            [f"{k}@{frames}:teacher" for k in keys],
            lambda idx: teacher_states(
                encoder, feats[idx].to(device, dtype), frames, self.model.disable_adapter()
            ),
        )
        return torch.stack([r.to(device, dtype) for r in rows])

    def _loss_from_cached_cross_kv(
        self, feats: torch.Tensor, keys: list[str], labels: torch.Tensor
    ) -> torch.Tensor:
        """Frozen encoder and cross-attention key/value projections: the keys/values per clip never
        change, so compute them once (in place of the encoder output) and feed them as a cache."""
        base = self._base()
        device, dtype = self.param_device, self.param_dtype

        def project(idx: list[int]) -> torch.Tensor:
            with torch.no_grad():
                return project_cross_kv(
                    base.model.decoder, encode(base.model.encoder, feats[idx].to(device, dtype))
                )

        rows = self._per_clip([f"{k}@{feats.shape[-1]}:cross-kv" for k in keys], project)
        cache = cross_kv_cache(rows, device, dtype)
        stand_in = placeholder_encoder_output(
            len(keys), rows[0].shape[-2], base.config.d_model, device, dtype
        )
        return self.model(encoder_outputs=(stand_in,), labels=labels, cache=cache, use_cache=True).loss

    def _cached_encoder_outputs(self, feats: torch.Tensor, keys: list[str]) -> torch.Tensor:
        """Frozen, unaugmented encoder: its output per utterance and context never changes, so
        compute it once. The engine makes keys unique per input variant (e.g. id + speed factor)."""
        encoder = self._base().model.encoder
        device, dtype = self.param_device, self.param_dtype

        def run(idx: list[int]) -> torch.Tensor:
            with torch.no_grad():
                return encode(encoder, feats[idx].to(device, dtype))

        # a clip batched at another context differs, hence the frames in the key
        rows = self._per_clip([f"{k}@{feats.shape[-1]}" for k in keys], run)
        return torch.stack([r.to(device, dtype) for r in rows])

    def _per_clip(self, keys: list[str], compute: Callable[[list[int]], torch.Tensor]) -> list[torch.Tensor]:
        """One tensor per key from the encoder cache; ``compute(indices)`` makes those of the
        missing keys in one batch, which are cached while the budget allows."""
        missing = [i for i, k in enumerate(keys) if k not in self._encoder_cache]
        fresh: dict[int, torch.Tensor] = {}
        if missing:
            for i, row in zip(missing, compute(missing), strict=True):
                fresh[i] = self._cache_encoder_output(keys[i], row)
        return [fresh[i] if i in fresh else self._encoder_cache[k] for i, k in enumerate(keys)]

    def _cache_encoder_output(self, key: str, hidden: torch.Tensor) -> torch.Tensor:
        """Keep ``hidden`` in the host cache in half precision while the byte budget allows.

        Returns what the decoder should see: the cached (rounded) copy, so an utterance gets the
        same encoder output in every epoch, or ``hidden`` itself once the cache is full.
        """
        if key in self._encoder_cache:
            return self._encoder_cache[key]
        size = hidden.numel() * 2
        if self._encoder_cache_used + size > self.encoder_cache_bytes:
            if not getattr(self, "_told_cache_full", False):
                log.info(
                    "frozen-encoder cache full (%d entries, %.1f GiB; %s); further utterances are encoded "
                    "every step",
                    len(self._encoder_cache),
                    self._encoder_cache_used / 2**30,
                    ENCODER_CACHE_BYTES_ENV,
                )
                self._told_cache_full = True
            return hidden
        stored = half_for_cache(hidden)
        self._encoder_cache[key] = stored
        self._encoder_cache_used += stored.numel() * stored.element_size()
        return stored

    def clear_encoder_cache(self) -> None:
        """Forget cached encoder outputs (e.g. after the encoder's weights changed)."""
        self._encoder_cache.clear()
        self._encoder_cache_used = 0
