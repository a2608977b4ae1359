"""funasr family: the shared base of Paraformer (non-autoregressive, :mod:`.paraformer`) and
SenseVoice-Small (CTC with rich tags, :mod:`.sensevoice`).

Models are built from ``config.yaml`` through funasr's class registry (not ``AutoModel``, which
resets seeds, changes the torch thread count and forces batch size 1 on CPU), so the torch
module, tokenizer and frontend stay at hand. Decoding is greedy and batched on fbank features
computed here without dither (funasr's ``WavFrontend`` dithers by default, which makes its
output random). SenseVoice keeps its ``<|zh|><|NEUTRAL|><|Speech|><|woitn|>`` prefix in the raw
text; :meth:`FunASRModel.clean_prediction` removes it. :meth:`FunASRModel.load` picks the class
from the model config.yaml names (:data:`IMPLEMENTATIONS`); saved folders are the same for both.

``save`` merges LoRA adapters into the weights: every saved directory is a complete funasr
model (``config.yaml``, ``tokens.json`` or ``bpe.model``, ``am.mvn``, ``model.safetensors``);
funasr's ``AutoModel`` additionally needs ``model.pt``, see
:func:`asr.models.funasr.checkpoint.write_native_weights`.

>>> m = load_model("sensevoice-small", device="cpu")  # doctest: +SKIP
>>> m.transcribe([wave], DecodeOptions(language="zh"))  # doctest: +SKIP
['<|zh|><|NEUTRAL|><|Speech|><|woitn|>今天恰么子饭啰']
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from asr.errors import ConfigError, DataError, ModelSourceError
from asr.models.base import ASRModel
from asr.models.checkpoint import SAMPLE_RATE, cast_state, write_marker
from asr.models.funasr.checkpoint import (
    NATIVE_WEIGHTS_FILE,
    SAFETENSORS_FILE,
    ModelDir,
    apply_state,
    funasr_tables,
    load_state,
    read_model_dir,
    write_model_dir,
    write_native_weights,
)
from asr.models.registry import SANM_LORA_TARGETS
from asr.models.spec import DecodeOptions, ModelSpec
from asr.text.normalize import normalize, strip_model_tags

log = logging.getLogger(__name__)

TRAINABLE_CLASSES = ("Paraformer", "SenseVoiceSmall")
# the funasr class of config.yaml (or a subclass of it) -> the class that runs it, as "module:Class"
IMPLEMENTATIONS = {
    "SenseVoiceSmall": "asr.models.funasr.sensevoice:SenseVoiceASR",
    "Paraformer": "asr.models.funasr.paraformer:ParaformerASR",
}
BATCH_KEYS = ("speech", "speech_lengths", "text", "text_lengths")  # what funasr's forward takes
MIN_SAMPLES = 400  # one 25 ms analysis window; shorter clips are zero-padded to it

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def clean_funasr_text(text: str) -> str:
    """Drop ``<|...|>`` tags and spaces between CJK characters.

    >>> clean_funasr_text("<|yue|><|HAPPY|><|BGM|><|woitn|>好 啊 ok 啦")
    '好啊 ok 啦'
    """
    return _CJK_GAP.sub("", strip_model_tags(text)).strip()


class FunASRModel(ASRModel):
    """A funasr model behind :class:`ASRModel`: what Paraformer and SenseVoiceSmall share.

    Subclasses decode (:meth:`_decode`), name their decoder (:meth:`decoding_settings`) and
    turn transcripts into training targets (:meth:`text_ids`, :meth:`_label_prefix`).
    """

    family: ClassVar[str] = "funasr"
    default_lora_targets: ClassVar[tuple[str, ...]] = SANM_LORA_TARGETS
    card_tag: ClassVar[str] = "funasr"

    def __init__(
        self,
        net: torch.nn.Module,
        tokenizer: Any,
        frontend: Any,
        files: ModelDir,
        spec: ModelSpec,
        device: torch.device | str,
        dtype: torch.dtype,
    ):
        super().__init__(spec, device, dtype)
        tables = funasr_tables()
        self.net = net
        self.tokenizer = tokenizer
        self.frontend = frontend  # as configured (training features; may dither)
        self.infer_frontend = _without_dither(frontend, files.frontend_conf, tables)
        self.files = files
        self._peft: torch.nn.Module | None = None
        self._specaug_off: torch.nn.Module | None = None  # config.yaml's SpecAugment while disabled

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(cls, path: Path, spec: ModelSpec, device: torch.device, dtype: torch.dtype) -> FunASRModel:
        """The model in ``path`` as the class that runs its network (:meth:`implementation`)."""
        files = read_model_dir(path)
        model_class(files)
        if files.weights is None:
            raise ModelSourceError(f"{path}: no model.safetensors or model.pt next to config.yaml")
        net, tokenizer, frontend = build_components(files)
        state = load_state(files.weights)
        apply_state(net, state, files.weights)
        net.to(device=device, dtype=dtype).eval()
        loaded = cls.implementation(net)(net, tokenizer, frontend, files, spec, device, dtype)
        stored = next((t.dtype for t in state.values() if t.is_floating_point()), None)
        loaded.save_dtype = stored or torch.float32
        return loaded

    @staticmethod
    def implementation(net: torch.nn.Module) -> type[FunASRModel]:
        """The class that runs ``net``: the first of :data:`IMPLEMENTATIONS` whose funasr class it is."""
        tables = funasr_tables()
        for name, target in IMPLEMENTATIONS.items():
            if isinstance(net, tables.model_classes[name]):
                module, _, cls = target.partition(":")
                return getattr(importlib.import_module(module), cls)
        raise ModelSourceError(f"{type(net).__name__} is not a funasr class this toolkit runs")

    def save(self, out_dir: Path) -> None:
        """Write a complete funasr directory (LoRA merged into the weights) plus our marker.

        Weights are written in :attr:`save_dtype` (the checkpoint's at load); a LoRA adapter is
        merged into an fp32 CPU copy, so a bf16/fp16 training cast does not round the merge.
        """
        from asr.models.peft_utils import merge_lora

        if self._peft is not None:
            net = merge_lora(self._peft, copy=True, dtype=torch.float32, device="cpu")
        else:
            net = self.net
        state = cast_state(net.state_dict(), self.save_dtype)
        write_model_dir(out_dir, self.files, state, getattr(self.tokenizer, "token_list", None))
        write_marker(out_dir, self.family, self.spec.name)

    # --- export -----------------------------------------------------------
    @classmethod
    def check_full_weights(cls, path: Path) -> None:
        if not (path / SAFETENSORS_FILE).is_file() and not (path / NATIVE_WEIGHTS_FILE).is_file():
            raise ModelSourceError(f"{path}: config.yaml but no {SAFETENSORS_FILE} or {NATIVE_WEIGHTS_FILE}")

    def save_export(self, out_dir: Path) -> None:
        """Also write ``model.pt`` (tensors only): funasr's ``AutoModel`` reads nothing else."""
        self.save(out_dir)
        write_native_weights(out_dir)

    # --- model card -------------------------------------------------------
    @classmethod
    def card_library(cls, adapter: bool) -> str:
        return "funasr"

    @property
    def module(self) -> torch.nn.Module:
        return self._peft if self._peft is not None else self.net

    # --- inference ------------------------------------------------------
    def features(self, waves: list[np.ndarray], frontend: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded fbank(+LFR, CMVN) float32 features and their lengths, on the CPU.

        CPU, so :meth:`collate` can run in DataLoader worker processes (no CUDA after fork) and
        its batches can be pinned; :meth:`transcribe` and :meth:`loss` move them to the module.
        """
        frontend = frontend or self.infer_frontend
        tensors = [torch.from_numpy(_as_wave(w, i)) for i, w in enumerate(waves)]
        lengths = torch.tensor([len(t) for t in tensors])
        padded = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True)
        feats, feat_lens = frontend(padded, lengths)
        return feats.to("cpu", torch.float32), torch.as_tensor(feat_lens).to("cpu")

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        if not waves:
            return []
        was_training = self.net.training
        self.net.eval()
        try:
            feats, lens = self.features(waves)
            device = self.param_device
            feats, lens = feats.to(device, self.param_dtype), lens.to(device)
            with self._half_precision():
                return self._decode(feats, lens, options)
        finally:
            self.net.train(was_training)

    def _decode(self, feats: torch.Tensor, lens: torch.Tensor, options: DecodeOptions) -> list[str]:
        """Greedy texts of a batch of features (on the module's device) and their lengths."""
        raise NotImplementedError

    @contextlib.contextmanager
    def _half_precision(self) -> Iterator[None]:
        """Run funasr code on half-precision weights (a bf16/fp16 load, DeepSpeed's cast).

        funasr is written for fp32 weights under autocast: its masks are fp32 (so activations turn
        fp32 before half-precision convs) and the CIF predictor runs with autocast off and needs
        fp32 (it fills a hidden-dtype tensor with fp32 frames). So, as funasr's own trainer does,
        run under autocast in the weights' dtype, and run the predictor in fp32 (its weights cast
        on the fly, differentiably; inputs cast to fp32; autocast off on every device).
        Normalization layers get their input in their weights' dtype: CUDA autocast runs them in
        fp32 either way, CPU autocast would otherwise refuse fp32 input with half weights.
        No-op for fp32 weights.
        """
        dtype = self.param_dtype
        if dtype not in (torch.float16, torch.bfloat16):
            yield
            return
        device_type = self.param_device.type
        predictor = getattr(self.net, "predictor", None)
        if predictor is not None:
            predictor.forward = _fp32_forward(predictor, device_type)
        hooks = [
            m.register_forward_pre_hook(_input_as_weight)
            for m in self.net.modules()
            if isinstance(m, _NORMS) and isinstance(getattr(m, "weight", None), torch.Tensor)
        ]
        try:
            with torch.autocast(device_type, dtype=dtype):
                yield
        finally:
            for hook in hooks:
                hook.remove()
            if predictor is not None:
                del predictor.forward

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = options.as_dict()
        settings.update(beam_size=1, guard=False, task="transcribe", dither=0.0)
        return settings

    def clean_prediction(self, text: str) -> str:
        return clean_funasr_text(text)

    # --- training -------------------------------------------------------
    def _require_trainable(self) -> None:
        name = type(self.net).__name__
        if name not in TRAINABLE_CLASSES:
            raise ConfigError(
                f"fine-tuning supports the funasr classes {', '.join(TRAINABLE_CLASSES)}; "
                f"{self.files.path / 'config.yaml'} holds a {name} (decoding only)"
            )

    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        """``full``: all weights (the fbank frontend has none); ``decoder``: Paraformer's predictor
        and decoder, encoder frozen; ``lora``: peft LoRA on the SANM attention linears."""
        self._require_trainable()
        if self._peft is not None:
            raise ConfigError("LoRA is already applied to this model; load it again to change the method")
        if method == "lora":
            from asr.models.peft_utils import apply_lora

            if (lora or {}).get("scope") == "decoder" and getattr(self.net, "decoder", None) is None:
                raise ConfigError(
                    f"LoRA scope 'decoder': {type(self.net).__name__} has no decoder (use scope 'all')"
                )
            self._peft = apply_lora(self.net, lora or {}, self.lora_targets())
        elif method == "full":
            self.net.requires_grad_(True)
        elif method == "decoder":
            if getattr(self.net, "decoder", None) is None:
                raise ConfigError(
                    f"method 'decoder' needs an attention decoder; {type(self.net).__name__} is an "
                    "encoder-only CTC model: use 'full' or 'lora'"
                )
            self.net.requires_grad_(True)
            self.net.encoder.requires_grad_(False)
        else:
            raise ConfigError(f"unknown fine-tuning method {method!r} (lora, full, decoder)")

    def enable_spec_augment(
        self, mask_time_prob: float = 0.05, mask_feature_prob: float = 0.0, **kw: Any
    ) -> bool:
        """funasr applies the ``specaug`` of config.yaml (SpecAugLFR) whenever the module trains:
        True when the checkpoint configures one (its own mask settings apply), else False.
        Undoes :meth:`disable_spec_augment`."""
        if self._specaug_off is not None:
            self.net.specaug = self._specaug_off
            self._specaug_off = None
        return getattr(self.net, "specaug", None) is not None

    def disable_spec_augment(self) -> bool:
        """Stop the ``specaug`` module of config.yaml from masking training features.

        The module is detached from the network (kept aside for :meth:`enable_spec_augment`);
        config.yaml, and so :meth:`save`, keeps the checkpoint's setting. True when there was
        one to turn off.
        """
        specaug = getattr(self.net, "specaug", None)
        if specaug is None:
            return self._specaug_off is not None
        self._specaug_off = specaug
        self.net.specaug = None
        return True

    def text_ids(self, text: str) -> list[int]:
        """Token ids of the normalized transcript (no language/emotion prefix)."""
        raise NotImplementedError

    def _label_prefix(self) -> list[int]:
        """Token ids every training target starts with (none by default)."""
        return []

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        self._require_trainable()
        if len(waves) != len(texts) or not waves:
            raise DataError(
                f"a training batch needs waveforms and transcripts: got {len(waves)} and {len(texts)}"
            )
        speech, speech_lengths = self.features(waves, frontend=self.frontend)
        prefix = self._label_prefix()
        ids = [prefix + self.text_ids(t) for t in texts]
        width = max(1, max(len(i) for i in ids))
        text = torch.full((len(ids), width), self.net.ignore_id, dtype=torch.long)
        for row, seq in enumerate(ids):
            text[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        return {
            "speech": speech,
            "speech_lengths": speech_lengths,
            "text": text,
            "text_lengths": torch.tensor([len(i) for i in ids], dtype=torch.long),
        }

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        self._require_trainable()
        missing = [k for k in BATCH_KEYS if not isinstance(batch.get(k), torch.Tensor)]
        if missing:
            raise DataError(f"training batch lacks {', '.join(missing)} (build it with collate)")
        device = self.param_device
        inputs = {k: batch[k].to(device) for k in BATCH_KEYS}  # other entries (ids, ...) stay out
        inputs["speech"] = inputs["speech"].to(self.param_dtype)
        # SenseVoice increments speech_lengths in place; never touch the caller's batch
        inputs["speech_lengths"] = inputs["speech_lengths"].clone()
        with self._half_precision():
            loss, _stats, _weight = self.module(**inputs)
        return loss.reshape(())

    def unknown_characters(self, texts: list[str]) -> dict[str, int]:
        counts = Counter(ch for t in texts for ch in normalize(t))
        return {ch: n for ch, n in sorted(counts.items()) if not self._can_emit(ch)}

    def _can_emit(self, ch: str) -> bool:
        ids = [i for i in self.tokenizer.encode(ch) if i != sentencepiece_space(self.tokenizer)]
        return bool(ids) and _unk_id(self.tokenizer) not in ids and self.net.blank_id not in ids


_NORMS = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)


def _input_as_weight(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """Forward pre-hook: floating-point positional inputs in the dtype of ``module.weight``."""
    dtype = module.weight.dtype
    return tuple(a.to(dtype) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args)


def _fp32_forward(module: torch.nn.Module, device_type: str) -> Any:
    """A replacement ``forward`` running ``module`` in fp32 (parameters cast, autocast off)."""
    original = module.forward  # the class's forward, bound
    inside = False

    def to_fp32(value: Any) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point():
            return value.float()
        return value

    def forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside
        if inside:  # functional_call calls the module, which lands here again
            return original(*args, **kwargs)
        tensors = {name: to_fp32(t) for name, t in module.named_parameters()}
        tensors.update({name: to_fp32(t) for name, t in module.named_buffers()})
        inside = True
        try:
            with torch.autocast(device_type, enabled=False):
                return torch.func.functional_call(
                    module,
                    tensors,
                    tuple(to_fp32(a) for a in args),
                    {k: to_fp32(v) for k, v in kwargs.items()},
                )
        finally:
            inside = False

    return forward


def model_class(files: ModelDir) -> type:
    """The funasr class named in config.yaml, if it is one this family runs."""
    tables = funasr_tables()
    cls = tables.model_classes.get(files.config["model"])
    supported = (tables.model_classes["Paraformer"], tables.model_classes["SenseVoiceSmall"])
    if cls is None or not issubclass(cls, supported):
        raise ModelSourceError(
            f"{files.path / 'config.yaml'}: model {files.config['model']!r} is not an ASR model this "
            "toolkit runs (Paraformer and its variants, SenseVoiceSmall)"
        )
    return cls


def build_components(files: ModelDir) -> tuple[torch.nn.Module, Any, Any]:
    """Tokenizer, frontend and (randomly initialised) model from a resolved funasr directory."""
    tables = funasr_tables()
    config = files.config
    where = files.path / "config.yaml"
    cls = model_class(files)
    tokenizer = _build(
        tables.tokenizer_classes, config.get("tokenizer"), files.tokenizer_conf, where, "tokenizer"
    )
    frontend = _build(tables.frontend_classes, config.get("frontend"), files.frontend_conf, where, "frontend")
    token_list = getattr(tokenizer, "token_list", None)
    vocab_size = len(token_list) if token_list is not None else tokenizer.get_vocab_size()
    kwargs: dict[str, Any] = dict(config.get("model_conf") or {})
    kwargs.update(config)  # funasr lets top-level keys override model_conf
    kwargs.update(
        vocab_size=vocab_size, input_size=frontend.output_size(), tokenizer=tokenizer, frontend=frontend
    )
    try:
        net = cls(**kwargs)
    except Exception as err:
        raise ModelSourceError(f"{where}: funasr could not build {config['model']} ({err})") from err
    return net, tokenizer, frontend


def _build(registry: dict[str, Any], name: Any, conf: dict[str, Any], where: Path, what: str) -> Any:
    cls = registry.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ModelSourceError(f"{where}: unknown funasr {what} {name!r} (known: {', '.join(registry)})")
    try:
        return cls(**conf)
    except Exception as err:
        raise ModelSourceError(f"{where}: funasr could not build {what} {name} ({err})") from err


def _without_dither(frontend: Any, conf: dict[str, Any], tables: Any) -> Any:
    if not getattr(frontend, "dither", 0.0):
        return frontend
    return tables.frontend_classes[type(frontend).__name__](**{**conf, "dither": 0.0})


def _as_wave(wave: np.ndarray, index: int) -> np.ndarray:
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1:
        raise DataError(
            f"waveform {index}: expected mono 1-D samples at {SAMPLE_RATE} Hz, got shape {arr.shape}"
        )
    if len(arr) < MIN_SAMPLES:
        arr = np.pad(arr, (0, MIN_SAMPLES - len(arr)))
    return np.ascontiguousarray(arr)


def _unk_id(tokenizer: Any) -> int | None:
    sp = getattr(tokenizer, "sp", None)
    return sp.unk_id() if sp is not None else getattr(tokenizer, "unk_id", None)


def sentencepiece_space(tokenizer: Any) -> int | None:
    """Id of a bare ``▁`` piece (sentencepiece's dummy prefix), which is not a character."""
    sp = getattr(tokenizer, "sp", None)
    if sp is None:
        return None
    sid = sp.piece_to_id("▁")
    return None if sid == sp.unk_id() else sid
