"""CTC family (wav2vec2 / XLS-R and other transformers ``*ForCTC`` models): greedy decoding, training.

Characters come from the checkpoint's ``vocab.json`` (``<pad>`` is the CTC blank, ``|`` the
word delimiter). Training labels are the protocol-normalized transcripts, so the model learns
to emit exactly what is scored. Beam search needs a language model, which this family does
not use: decoding is always greedy (argmax per frame, repeats collapsed, blanks dropped).

>>> model = load_model("xlsr-53-zh", device="cpu")  # doctest: +SKIP
>>> model.transcribe([wave], DecodeOptions())  # doctest: +SKIP
['今天恰么子饭']
"""

from __future__ import annotations

import json
import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from transformers import AutoModelForCTC, Wav2Vec2FeatureExtractor, Wav2Vec2Processor

from asr.errors import ConfigError, ModelSourceError
from asr.models.base import ASRModel
from asr.models.checkpoint import SAMPLE_RATE, checkpoint_dtype, unwrap_peft
from asr.models.ctc.vocab import (
    extended_vocab,
    grow_lm_head,
    make_tokenizer,
    text_ids,
)
from asr.models.ctc.vocab import unknown_characters as _unknown_characters
from asr.models.peft_utils import apply_lora, load_with_adapter, save_model_dir
from asr.models.registry import ATTENTION_LORA_TARGETS, MODELS
from asr.models.sources import detect_family
from asr.models.spec import DecodeOptions, ModelSpec

log = logging.getLogger(__name__)

# Config flag: the output layer (or some of its rows) has never been trained, so LoRA must train it.
UNTRAINED_HEAD = "ctc_head_untrained"

_CJK = "\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
_SPACE_BY_CJK = re.compile(rf"(?<=[{_CJK}])\s+|\s+(?=[{_CJK}])")


def clean_ctc_text(text: str) -> str:
    """Strip, collapse whitespace, and drop spaces next to CJK characters (Latin words keep theirs).

    >>> clean_ctc_text(" 长 沙 话 hello world ")
    '长沙话hello world'
    """
    return _SPACE_BY_CJK.sub("", " ".join(text.split()))


def _load_processor(path: Path, base_path: Path, config: Any) -> Wav2Vec2Processor:
    """Tokenizer (vocab.json) and feature extractor from the checkpoint, else from its base model."""
    src = next((p for p in (path, base_path) if (p / "vocab.json").is_file()), None)
    if src is None:
        raise ModelSourceError(
            f"{path}: a CTC checkpoint needs vocab.json (its character vocabulary); none found there"
            + (f" or in the base model {base_path}" if base_path != path else "")
        )
    processor = Wav2Vec2Processor.from_pretrained(src)
    if not any((src / f).is_file() for f in ("preprocessor_config.json", "processor_config.json")):
        # Only layer-norm models were trained with padding masks (see Wav2Vec2FeatureExtractor).
        layer_norm = getattr(config, "feat_extract_norm", "layer") == "layer"
        log.info("%s has no feature extractor config; using 16 kHz normalized input", src)
        processor.feature_extractor = Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=layer_norm
        )
    return processor


class _CTCLoader:
    """``from_pretrained`` for :func:`load_with_adapter` that sizes ``lm_head`` to an extended vocabulary."""

    def __init__(self, vocab_size: int | None) -> None:
        self.vocab_size = vocab_size

    def from_pretrained(self, path: Path, dtype: torch.dtype) -> torch.nn.Module:
        model = AutoModelForCTC.from_pretrained(path, dtype=dtype)
        if self.vocab_size and grow_lm_head(model, self.vocab_size):
            log.info("%s: lm_head grown to the %d entries of the extended vocabulary", path, self.vocab_size)
        return model


def _vocab_size(path: Path) -> int | None:
    vocab_file = path / "vocab.json"
    if not vocab_file.is_file():
        return None
    vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
    return max(vocab.values()) + 1 if vocab and all(isinstance(v, int) for v in vocab.values()) else None


class CTCASR(ASRModel):
    """A transformers CTC model (``AutoModelForCTC``) with its character tokenizer."""

    family: ClassVar[str] = "ctc"
    default_lora_targets: ClassVar[tuple[str, ...]] = ATTENTION_LORA_TARGETS
    card_tag: ClassVar[str] = "wav2vec2"
    peft_base_class: ClassVar[str | None] = "AutoModelForCTC"

    def __init__(self, model: Any, processor: Wav2Vec2Processor, spec: ModelSpec, device, dtype):
        super().__init__(spec, device, dtype)
        self.model = model
        self.processor = processor
        self._told_greedy = False
        config = self._base().config
        config.ctc_loss_reduction = "mean"
        config.ctc_zero_infinity = True
        tok = processor.tokenizer
        if tok.pad_token_id != config.pad_token_id:
            log.warning(
                "tokenizer <pad> id %s differs from the model's pad_token_id %s; the model's id is the blank",
                tok.pad_token_id,
                config.pad_token_id,
            )

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> CTCASR:
        model, base_path = load_with_adapter(path, _CTCLoader(_vocab_size(path)), dtype)
        inner = unwrap_peft(model)
        processor = _load_processor(path, base_path, inner.config)
        model.to(device).eval()
        loaded = cls(model, processor, spec, device, dtype)
        loaded.save_dtype = checkpoint_dtype(path) or checkpoint_dtype(base_path) or torch.float32
        return loaded

    def save(self, out_dir: Path) -> None:
        save_model_dir(self.model, out_dir, self.family, self.spec, dtype=self.save_dtype)
        self.processor.save_pretrained(out_dir)

    def _base(self) -> torch.nn.Module:
        return unwrap_peft(self.model)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    @property
    def vocab(self) -> dict[str, int]:
        return self.processor.tokenizer.get_vocab()

    # --- inference ------------------------------------------------------
    def uses_padding_mask(self) -> bool:
        """Whether padded batches are exact: layer-norm feature encoders trained with attention masks.

        Group-norm encoders (wav2vec2-base style) normalise over the whole padded length and
        were trained without masks, so their waves are batched only with equal-length waves.
        """
        config = self._base().config
        fe = self.processor.feature_extractor
        return bool(fe.return_attention_mask) and getattr(config, "feat_extract_norm", "layer") == "layer"

    def min_samples(self) -> int:
        """Shortest input that yields one output frame (the conv stack's receptive field)."""
        config = self._base().config
        size = 1
        for kernel, stride in reversed(list(zip(config.conv_kernel, config.conv_stride, strict=True))):
            size = (size - 1) * stride + kernel
        return size

    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Padded ``input_values`` (and ``attention_mask`` for masked models), each wave normalised alone."""
        use_mask = self.uses_padding_mask()
        minimum = self.min_samples()
        waves = [np.pad(w, (0, max(0, minimum - len(w)))).astype(np.float32, copy=False) for w in waves]
        out = self.processor.feature_extractor(
            waves,
            sampling_rate=SAMPLE_RATE,
            padding=True,
            return_attention_mask=use_mask,
            return_tensors="pt",
        )
        batch = {"input_values": out.input_values}
        if use_mask:
            batch["attention_mask"] = out.attention_mask
        return batch

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        if options.beam_size > 1 and not self._told_greedy:
            log.info("CTC without a language model decodes greedily; beam_size=%d ignored", options.beam_size)
            self._told_greedy = True
        texts = [""] * len(waves)
        minimum = self.min_samples()
        for group in self._groups(waves):
            todo = [i for i in group if len(waves[i]) >= minimum]  # shorter: no frame, empty text
            if not todo:
                continue
            for i, text in zip(todo, self._greedy([waves[i] for i in todo]), strict=True):
                texts[i] = text
        return texts

    def _groups(self, waves: list[np.ndarray]) -> list[list[int]]:
        if self.uses_padding_mask():
            return [list(range(len(waves)))]
        by_length: dict[int, list[int]] = defaultdict(list)
        for i, wave in enumerate(waves):
            by_length[len(wave)].append(i)
        return list(by_length.values())

    def _greedy(self, waves: list[np.ndarray]) -> list[str]:
        batch = self.features(waves)
        device = self.param_device
        inputs = batch["input_values"].to(device, self.param_dtype)
        mask = batch.get("attention_mask")
        base = self._base()
        if mask is not None:
            mask = mask.to(device)
            frames = base._get_feat_extract_output_lengths(mask.sum(-1)).tolist()
        else:
            frames = None
        logits = self.model(input_values=inputs, attention_mask=mask).logits
        best = logits.argmax(dim=-1).cpu()
        out = []
        for row, ids in enumerate(best.tolist()):
            out.append(self.decode_ids(ids[: frames[row]] if frames else ids))
        return out

    def decode_ids(self, frame_ids: list[int]) -> str:
        """Greedy CTC: collapse repeats, drop blanks and special tokens, delimiter -> space."""
        tok = self.processor.tokenizer
        blank = self._base().config.pad_token_id
        drop = {blank, tok.pad_token_id, tok.unk_token_id, tok.bos_token_id, tok.eos_token_id} - {None}
        kept = [t for n, t in enumerate(frame_ids) if (n == 0 or t != frame_ids[n - 1]) and t not in drop]
        delimiter, unk = tok.word_delimiter_token, tok.unk_token
        chars = [" " if c == delimiter else c for c in tok.convert_ids_to_tokens(kept) if c != unk]
        return clean_ctc_text("".join(chars))

    def clean_prediction(self, text: str) -> str:
        return clean_ctc_text(text)

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = options.as_dict()
        settings.update(decoder="greedy_ctc", beam_size=1, requested_beam_size=options.beam_size, guard=False)
        return settings

    # --- vocabulary -----------------------------------------------------
    def unknown_characters(self, texts: list[str]) -> dict[str, int]:
        """Normalized characters of ``texts`` outside the vocabulary (they train as ``<unk>``)."""
        return _unknown_characters(texts, self.vocab)

    def adapt_vocab(self, texts: list[str], extend_vocab: bool = False) -> dict[str, int]:
        """Report characters of the training ``texts`` outside the vocabulary; optionally add them.

        ``extend_vocab`` (default False) is the training option of the same name: False keeps
        the pretrained vocabulary and those characters train as ``<unk>`` (never emitted);
        True adds them and grows ``lm_head`` (see :func:`resize_vocab`). Call before
        :meth:`set_trainable`. Returns the unknown characters with their counts.
        """
        unknown = self.unknown_characters(texts)
        if unknown:
            shown = "".join(list(unknown)[:40])
            if extend_vocab:
                self.extend_vocab(texts)
                log.info("added %d characters to the CTC vocabulary: %s", len(unknown), shown)
            else:
                log.warning(
                    "%d characters are outside the CTC vocabulary and train as <unk> "
                    "(set extend_vocab to add them): %s",
                    len(unknown),
                    shown,
                )
        return unknown

    def extend_vocab(self, texts: list[str]) -> list[str]:
        """Add the missing characters of ``texts`` to the vocabulary and grow ``lm_head`` to match."""
        if self.model is not self._base():
            raise ConfigError("extend the CTC vocabulary before set_trainable('lora') wraps the model")
        vocab, added = extended_vocab(self.vocab, texts)
        if not added:
            return []
        self.processor.tokenizer = make_tokenizer(vocab, like=self.processor.tokenizer)
        grow_lm_head(self.model, max(vocab.values()) + 1)
        setattr(self.model.config, UNTRAINED_HEAD, True)
        return added

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        """``full``: everything but the conv feature encoder; ``lora``: adapters (+ ``lm_head``).

        LoRA trains ``lm_head`` too (peft ``modules_to_save``) when the head is new or was
        extended; ``lora={"modules_to_save": [...]}`` overrides that choice.
        """
        base = self._base()
        config = base.config
        if method == "decoder":
            raise ConfigError(
                "fine-tuning method 'decoder' does not apply to CTC models (they have no decoder); "
                "use 'lora' or 'full'"
            )
        if method not in ("lora", "full"):
            raise ConfigError(f"unknown fine-tuning method {method!r} for CTC models (lora, full)")
        head_untrained = bool(getattr(config, UNTRAINED_HEAD, False))
        if method == "full":
            base.requires_grad_(True)
            _freeze_feature_encoder(base)
            setattr(config, UNTRAINED_HEAD, False)
            return
        if self.model is not base:
            raise ConfigError("set_trainable('lora') was already applied to this model")
        lora = dict(lora or {})
        lora.setdefault("modules_to_save", ["lm_head"] if head_untrained else [])
        self.model = apply_lora(base, lora, self.lora_targets())
        _freeze_feature_encoder(base)
        if "lm_head" in (lora["modules_to_save"] or []):
            setattr(config, UNTRAINED_HEAD, False)

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        """``input_values`` (+ ``attention_mask``) and ``labels``: normalized character ids, -100 padded."""
        batch = self.features(waves)
        vocab = self.vocab
        unk = self.processor.tokenizer.unk_token_id
        ids = [text_ids(t, vocab, unk) for t in texts]
        labels = torch.full((len(ids), max((len(i) for i in ids), default=0)), -100, dtype=torch.long)
        for row, i in enumerate(ids):
            labels[row, : len(i)] = torch.tensor(i, dtype=torch.long)
        batch["labels"] = labels
        return batch

    def loss(self, batch: dict[str, Any]) -> torch.Tensor:
        mask = batch.get("attention_mask")
        device = self.param_device
        return self.model(
            input_values=batch["input_values"].to(device, self.param_dtype),
            attention_mask=None if mask is None else mask.to(device),
            labels=batch["labels"].to(device),
        ).loss


def _freeze_feature_encoder(model: torch.nn.Module) -> None:
    if hasattr(model, "freeze_feature_encoder"):
        model.freeze_feature_encoder()


def resize_vocab(model_dir_or_model: CTCASR | str | Path, texts: list[str]) -> list[str]:
    """Add the characters of ``texts`` missing from a CTC vocabulary and grow ``lm_head``.

    New rows start at the mean of the existing rows; existing rows are unchanged. A loaded
    :class:`CTCASR` is changed in place; a checkpoint directory is loaded, extended and saved
    back. This is what the training option ``extend_vocab: true`` does (default false: the
    vocabulary stays and unknown characters train as ``<unk>``). Returns the added characters.

    >>> resize_vocab("models/xlsr-53-zh", ["长沙话嗯咯"])  # doctest: +SKIP
    ['咯']
    """
    if isinstance(model_dir_or_model, CTCASR):
        return model_dir_or_model.extend_vocab(texts)
    path = Path(model_dir_or_model)
    if not path.is_dir():
        raise ModelSourceError(f"{path}: no such model directory")
    if (path / "adapter_config.json").is_file():
        raise ModelSourceError(f"{path} holds a LoRA adapter; extend the vocabulary of a full checkpoint")
    family, name = detect_family(path)
    if family != CTCASR.family:
        raise ModelSourceError(f"{path} is a {family} model; only CTC vocabularies can be extended")
    spec = MODELS[name] if name in MODELS else ModelSpec(name=name or path.name, family=CTCASR.family)
    model = CTCASR.load(path, spec, torch.device("cpu"), torch.float32)
    added = model.extend_vocab(texts)
    if added:
        model.save(path)
    return added
