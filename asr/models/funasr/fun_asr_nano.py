"""Fun-ASR-Nano (funasr's ``FunASRNano``: SenseVoice encoder + adaptor + Qwen3 LLM) behind :class:`ASRModel`.

A model directory is funasr's layout: ``config.yaml``, weights (``model.safetensors`` or
``model.pt``, the LLM's included) and the LLM folder named by ``llm_conf.init_param_path``
(``config.json`` + tokenizer files; the tokenizer's ``init_param_path`` names the same folder).
funasr hands that path to transformers as is, so a relative one would be read from the current
directory (or fetched from the Hub); here it is resolved against the model directory. Nothing is
downloaded: an audio encoder configured with ``hub: ms`` (funasr then builds it through
``AutoModel`` from ModelScope) is refused.

Decoding builds each clip's prompt with funasr's own code (``get_prompt`` /
``generate_chatml`` / ``inference_prepare``, one clip at a time, as funasr requires), left-pads
the prompt embeddings into one batch and runs ``generate`` with the hallucination guard.

>>> m = load_model("fun-asr-nano", device="cpu")  # doctest: +SKIP
>>> m.transcribe([wave], DecodeOptions(language="zh"))  # doctest: +SKIP
['今天恰么子饭啰。']
"""

from __future__ import annotations

import copy
import re
import shutil
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import yaml
from transformers import LogitsProcessorList

from asr.errors import ConfigError, DataError, ModelSourceError
from asr.models.base import ASRModel
from asr.models.checkpoint import SAMPLE_RATE, cast_state, write_marker
from asr.models.funasr.checkpoint import (
    CONFIG_FILE,
    NATIVE_WEIGHTS_FILE,
    SAFETENSORS_FILE,
    apply_state,
    funasr_tables,
    load_state,
)
from asr.models.funasr.export import FunasrExport
from asr.models.guard import cut_repetition, generation_guard
from asr.models.peft_utils import apply_lora, merge_lora
from asr.models.registry import LLM_LORA_TARGETS
from asr.models.spec import DecodeOptions, ModelSpec
from asr.text.normalize import strip_model_tags

LLM_DIR = "Qwen3-0.6B"  # the release's LLM folder name
END_OF_TURN = "<|im_end|>"
# The prompt's language hint: funasr's get_prompt writes "语音转写成<name>" (Nano: 中文, 英文, 日文)
LANGUAGE_NAMES = {"zh": "中文", "en": "英文", "ja": "日文"}
# the audio adaptor's linears (funasr llm_asr.adaptor.Transformer): projection and attention blocks
ADAPTOR_LINEARS = ("linear1", "linear2", "linear_q", "linear_k", "linear_v", "linear_out", "w_1", "w_2")
MIN_SAMPLES = 400  # one 25 ms analysis window; shorter clips are zero-padded to it

_THINK = re.compile(r"<think>.*?</think>", re.S)
_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def clean_nano_text(text: str) -> str:
    """Drop the model's markers: a think block, ``<|...|>`` tags, ``/sil``, spaces between CJK.

    >>> clean_nano_text("<think>\\n\\n</think>\\n\\n今天 /sil 恰么子饭<|im_end|>")
    '今天恰么子饭'
    """
    text = strip_model_tags(_THINK.sub("", text)).replace("/sil", " ")
    return _CJK_GAP.sub("", re.sub(r"\s+", " ", text)).strip()


def prompt_language(language: str | None) -> str | None:
    """The language name the prompt takes for a registry language code (None: no hint)."""
    if language is None or language == "auto":
        return None
    if language not in LANGUAGE_NAMES:
        raise ConfigError(
            f"Fun-ASR-Nano language {language!r} is not one of auto, {', '.join(LANGUAGE_NAMES)}"
        )
    return LANGUAGE_NAMES[language]


def hotwords(context: str | None) -> list[str]:
    """The hot-word list of a context text: its entries split at commas, 、, semicolons and newlines.

    >>> hotwords("长沙话：岳麓山，橘子洲\\n坡子街")
    ['长沙话：岳麓山', '橘子洲', '坡子街']
    """
    return [w.strip() for w in re.split(r"[,，、;；\n]", context or "") if w.strip()]


def read_config(path: Path) -> dict[str, Any]:
    """config.yaml with the LLM/tokenizer folder resolved against ``path`` (offline checks included)."""
    where = path / CONFIG_FILE
    if not where.is_file():
        raise ModelSourceError(f"{path}: no {CONFIG_FILE}; not a funasr model directory")
    config = yaml.safe_load(where.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or config.get("model") != "FunASRNano":
        raise ModelSourceError(f"{where}: not a Fun-ASR-Nano config (model: FunASRNano)")
    if (config.get("audio_encoder_conf") or {}).get("hub") == "ms":
        raise ModelSourceError(
            f"{where}: audio_encoder_conf.hub is 'ms': funasr would download the audio encoder "
            f"{config.get('audio_encoder')!r} from ModelScope; use a local encoder class "
            "(e.g. audio_encoder: SenseVoiceEncoderSmall) whose weights are in the checkpoint"
        )
    llm = dict(config.get("llm_conf") or {})
    folder = Path(str(llm.get("init_param_path") or ""))
    folder = folder if folder.is_absolute() else path / folder
    if not (folder / "config.json").is_file():
        raise ModelSourceError(f"{where}: llm_conf.init_param_path names {folder}, which has no config.json")
    config["llm_conf"] = {**llm, "init_param_path": str(folder)}
    config["tokenizer_conf"] = {**(config.get("tokenizer_conf") or {}), "init_param_path": str(folder)}
    for conf in _ctc_tokenizer_confs(
        config
    ):  # the CTC (timestamp) tokenizer's vocabulary, e.g. multilingual.tiktoken
        vocab = conf.get("vocab_path")
        if isinstance(vocab, str) and not Path(vocab).is_absolute() and (path / vocab).is_file():
            conf["vocab_path"] = str(path / vocab)
    return config


def _ctc_tokenizer_confs(config: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``ctc_tokenizer_conf`` mappings funasr may read (top level, then ``dataset_conf``)."""
    confs = [config.get("ctc_tokenizer_conf"), (config.get("dataset_conf") or {}).get("ctc_tokenizer_conf")]
    return [c for c in confs if isinstance(c, dict)]


class FunASRNanoASR(FunasrExport, ASRModel):
    """A funasr ``FunASRNano`` (speech encoder + Qwen3 LLM) behind :class:`ASRModel`."""

    family: ClassVar[str] = "fun_asr_nano"
    default_lora_targets: ClassVar[tuple[str, ...]] = LLM_LORA_TARGETS
    card_tag: ClassVar[str] = "funasr"

    def __init__(self, net: torch.nn.Module, tokenizer: Any, frontend: Any, path: Path, config: dict[str, Any],
                 spec: ModelSpec, device: torch.device | str, dtype: torch.dtype):  # fmt: skip
        super().__init__(spec, device, dtype)
        self.net = net
        self.tokenizer = tokenizer
        self.frontend = frontend
        self.infer_frontend = _frontend(config, dither=0.0)  # decoding is deterministic
        self.path = path
        self.config = config  # as read (LLM folder resolved); save writes the relative one back
        self._peft: torch.nn.Module | None = None

    # --- loading / saving -------------------------------------------------
    @classmethod
    def load(
        cls,
        path: Path,
        spec: ModelSpec,
        device: torch.device,
        dtype: torch.dtype,
        *,
        random_init: bool = False,
    ) -> FunASRNanoASR:
        """Build from config.yaml and load the weights (``random_init``: keep the random init; tests)."""
        tables = funasr_tables()
        config = read_config(path)
        tokenizer = tables.tokenizer_classes["HuggingfaceTokenizer"](**config["tokenizer_conf"])
        frontend = _frontend(config)
        kwargs = {**copy.deepcopy(config.get("model_conf") or {}), **copy.deepcopy(config)}
        kwargs.update(input_size=frontend.output_size(), tokenizer=tokenizer, frontend=frontend)
        try:
            net = tables.model_classes["FunASRNano"](**kwargs)
        except Exception as err:
            raise ModelSourceError(
                f"{path / CONFIG_FILE}: funasr could not build FunASRNano ({err})"
            ) from err
        state: dict[str, torch.Tensor] = {}
        if not random_init:
            weights = next(
                (path / n for n in (SAFETENSORS_FILE, NATIVE_WEIGHTS_FILE) if (path / n).is_file()), None
            )
            if weights is None:
                raise ModelSourceError(
                    f"{path}: no {SAFETENSORS_FILE} or {NATIVE_WEIGHTS_FILE} next to config.yaml"
                )
            state = load_state(weights)
            # funasr's own rule: without trained CTC tensors (the release has none) the timestamp
            # branch is dropped, so its parameters are not missing weights
            net.on_pretrained_model_loaded(set(state))
            apply_state(net, state, weights)
        stored = next((t.dtype for t in state.values() if t.is_floating_point()), None)
        loaded = cls(net, tokenizer, frontend, path, config, spec, device, dtype)
        loaded.save_dtype = stored or torch.float32
        loaded.to(device)
        loaded.set_llm_dtype(dtype)
        net.eval()
        return loaded

    def set_llm_dtype(self, dtype: torch.dtype) -> None:
        """Run the LLM in ``dtype``; the audio encoder and adaptor stay fp32, as funasr runs them
        (its encoder has fp32-only ops; the adaptor output is cast when written into the LLM input)."""
        names = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
        self.net.float()
        self.net.llm.to(dtype)
        self.net.llm_dtype = names[dtype]  # funasr's forward runs the LLM under autocast in this dtype

    def save(self, out_dir: Path) -> None:
        """config.yaml, the LLM folder (config + tokenizer), ``model.safetensors`` (LoRA merged), marker."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        net = merge_lora(self._peft, copy=True, dtype=torch.float32, device="cpu") if self._peft else self.net
        llm_src = Path(self.config["llm_conf"]["init_param_path"])
        llm_dst = out_dir / LLM_DIR
        if llm_src.resolve() != llm_dst.resolve():
            shutil.rmtree(llm_dst, ignore_errors=True)
            shutil.copytree(llm_src, llm_dst, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "*.pt"))
        config = copy.deepcopy(self.config)
        config["llm_conf"]["init_param_path"] = LLM_DIR
        config["tokenizer_conf"]["init_param_path"] = LLM_DIR
        config["llm_conf"]["use_lora"] = False  # merged
        for conf in _ctc_tokenizer_confs(config):
            vocab = conf.get("vocab_path")
            if isinstance(vocab, str) and Path(vocab).is_file():
                if Path(vocab).resolve() != (out_dir / Path(vocab).name).resolve():
                    shutil.copyfile(vocab, out_dir / Path(vocab).name)
                conf["vocab_path"] = Path(vocab).name
        (out_dir / CONFIG_FILE).write_text(
            yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        from safetensors.torch import save_file

        state = cast_state(net.state_dict(), self.save_dtype)
        tensors = {k: v.contiguous().clone() for k, v in state.items()}  # safetensors refuses shared storage
        save_file(tensors, str(out_dir / SAFETENSORS_FILE), metadata={"format": "pt"})
        (out_dir / NATIVE_WEIGHTS_FILE).unlink(missing_ok=True)  # a stale model.pt would win in funasr
        write_marker(out_dir, self.family, self.spec.name)

    @property
    def module(self) -> torch.nn.Module:
        return self._peft if self._peft is not None else self.net

    # --- inference ------------------------------------------------------
    def _prompt(self, language: str | None, context: str | None = None) -> str:
        """funasr's prompt: the hot-word list from ``context`` (if any), the language hint, no ITN."""
        return self.net.get_prompt(hotwords(context), prompt_language(language), itn=False)

    def _dataset_conf(self) -> dict[str, Any]:
        return dict(self.config.get("dataset_conf") or {})

    def _embeds(self, wave: np.ndarray, prompt: str) -> torch.Tensor:
        """Prompt embeddings of one clip ([1, T, D]) built by funasr's own code."""
        chat = self.net.generate_chatml(prompt, torch.from_numpy(_as_wave(wave)))
        embeds = self.net.inference_prepare(
            [chat],
            None,
            ["utt"],
            self.tokenizer,
            self.infer_frontend,
            device=self.param_device,
            dataset_conf=self._dataset_conf(),  # do_think / sys_prompt, as funasr's AutoModel passes them
        )[0]
        return embeds

    @torch.inference_mode()
    def transcribe(
        self, waves: list[np.ndarray], options: DecodeOptions, durations: list[float] | None = None
    ) -> list[str]:
        if not waves:
            return []
        durations = durations or [len(w) / SAMPLE_RATE for w in waves]
        was_training = self.net.training
        self.net.eval()
        try:
            prompt = self._prompt(options.language, options.context)
            embeds = [self._embeds(w, prompt) for w in waves]
            llm = self.net.llm  # peft injects its LoRA layers into this same module
            dtype = llm.dtype
            width = max(e.shape[1] for e in embeds)
            padded = torch.zeros(
                len(embeds), width, embeds[0].shape[-1], device=embeds[0].device, dtype=dtype
            )
            mask = torch.zeros(len(embeds), width, dtype=torch.long, device=padded.device)
            for i, e in enumerate(embeds):  # left padding, as funasr's own batched decoding
                padded[i, width - e.shape[1] :] = e[0].to(dtype)
                mask[i, width - e.shape[1] :] = 1
            eos = self.tokenizer.convert_tokens_to_ids(END_OF_TURN)
            stops = sorted({eos, *_ids(llm.config.eos_token_id)})
            pad = llm.config.pad_token_id if llm.config.pad_token_id is not None else eos
            processors, max_new = generation_guard(durations, options, eos, 512)  # 512: funasr's max_length
            out = llm.generate(
                inputs_embeds=padded,
                attention_mask=mask,
                max_new_tokens=max_new,
                num_beams=options.beam_size,
                do_sample=False,
                logits_processor=processors,
                eos_token_id=stops,
                pad_token_id=pad,
            )
        finally:
            self.net.train(was_training)
        texts = []
        for row in out.tolist():
            end = next((i for i, t in enumerate(row) if t in stops), len(row))
            tokens = row[:end]
            if options.guard:
                tokens = cut_repetition(tokens, options.repeat_limit, options.repeat_max_period)
            texts.append(self.tokenizer.decode(tokens, skip_special_tokens=True))
        return texts

    def clean_prediction(self, text: str) -> str:
        return clean_nano_text(text)

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = options.as_dict()
        settings.update(backend="torch", prompt=self._prompt(options.language, options.context), itn=False)
        return settings

    # --- training -------------------------------------------------------
    def set_trainable(self, method: str, lora: dict[str, Any] | None = None) -> None:
        """``lora``: adapters on the LLM's attention and MLP projections (scope ``all``: the adaptor's
        linears too; the rest frozen);
        ``full``: everything; ``decoder``: the LLM and the adaptor (audio encoder frozen)."""
        if self._peft is not None:
            raise ConfigError("LoRA is already applied to this model; load it again to change the method")
        if method == "lora":
            lora = dict(lora or {})
            scope = lora.get("scope", "all")
            if scope not in ("decoder", "all"):
                raise ConfigError(
                    f"Fun-ASR-Nano lora.scope is decoder (the LLM) or all (LLM + adaptor), not {scope!r}"
                )
            targets = lora.get("targets") or self.lora_targets()
            if not isinstance(targets, str):
                targets = rf"llm\..*\.({'|'.join(targets)})"
                if scope == "all":
                    targets += rf"|audio_adaptor\..*({'|'.join(ADAPTOR_LINEARS)})"
            self.net.requires_grad_(False)
            self._peft = apply_lora(
                self.net, {**lora, "targets": targets, "scope": "all"}, self.lora_targets()
            )
        elif method == "full":
            self.net.requires_grad_(True)
        elif method == "decoder":
            self.net.requires_grad_(True)
            self.net.audio_encoder.requires_grad_(False)
        else:
            raise ConfigError(f"unknown fine-tuning method {method!r} for Fun-ASR-Nano (lora, full, decoder)")

    def collate(self, waves: list[np.ndarray], texts: list[str]) -> dict[str, torch.Tensor]:
        """funasr's own training sample per clip (prompt, audio placeholders, transcript + ``<|im_end|>``),
        right-padded; labels only on the transcript and the end token."""
        if len(waves) != len(texts) or not waves:
            raise DataError(
                f"a training batch needs waveforms and transcripts: got {len(waves)} and {len(texts)}"
            )
        prompt = self._prompt(self.spec.language)
        samples = []
        for wave, text in zip(waves, texts, strict=True):
            chat = self.net.generate_chatml(prompt, torch.from_numpy(_as_wave(wave)))
            chat[-1]["content"] = text
            contents = self.net.data_template(chat)
            samples.append(self.net.data_load_speech(contents, self.tokenizer, self.frontend, meta_data={},
                                                     dataset_conf=self._dataset_conf()))  # fmt: skip
        width = max(s["input_ids"].shape[1] for s in samples)
        n = len(samples)
        input_ids = torch.zeros(n, width, dtype=torch.long)
        labels = torch.full((n, width), -100, dtype=torch.long)
        attention = torch.zeros(n, width, dtype=torch.long)
        for i, s in enumerate(samples):
            length = s["input_ids"].shape[1]
            input_ids[i, :length] = s["input_ids"][0]
            labels[i, :length] = s["labels_ids"]
            attention[i, :length] = 1
        speech = torch.nn.utils.rnn.pad_sequence([s["speech"][0] for s in samples], batch_first=True)
        return {
            "speech": speech.float(),
            "speech_lengths": torch.tensor([int(s["speech_lengths"].reshape(-1)[0]) for s in samples]),
            "input_ids": input_ids,
            "attention_mask": attention,
            "labels_ids": labels,
            "fbank_beg": torch.cat([s["fbank_beg"] for s in samples]).long(),
            "fake_token_len": torch.cat([s["fake_token_len"] for s in samples]).long(),
        }

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        keys = (
            "speech",
            "speech_lengths",
            "input_ids",
            "attention_mask",
            "labels_ids",
            "fbank_beg",
            "fake_token_len",
        )
        missing = [k for k in keys if not isinstance(batch.get(k), torch.Tensor)]
        if missing:
            raise DataError(f"training batch lacks {', '.join(missing)} (build it with collate)")
        device = self.param_device
        inputs = {k: batch[k].to(device).clone() for k in keys}  # funasr edits them in place
        inputs["speech"] = inputs["speech"].float()  # the audio encoder runs in fp32
        net = self.net  # the peft wrapper shares the LoRA-injected modules with it
        return net(**inputs)[0].reshape(())


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _frontend(config: dict[str, Any], **overrides: Any) -> Any:
    conf = {**(config.get("frontend_conf") or {}), **overrides}
    return funasr_tables().frontend_classes[config.get("frontend", "WavFrontend")](**conf)


def _as_wave(wave: np.ndarray) -> np.ndarray:
    arr = np.asarray(wave, dtype=np.float32)
    if arr.ndim != 1:
        raise DataError(f"expected mono 1-D samples at {SAMPLE_RATE} Hz, got shape {arr.shape}")
    if len(arr) < MIN_SAMPLES:
        arr = np.pad(arr, (0, MIN_SAMPLES - len(arr)))
    return np.ascontiguousarray(arr)
