"""SenseVoice-Small: funasr's CTC model with language, emotion and event tags before the text."""

from __future__ import annotations

from typing import Any

import torch

from asr.errors import ConfigError, ModelSourceError
from asr.models.funasr.model import FunASRModel, sentencepiece_space
from asr.models.spec import DecodeOptions
from asr.text.normalize import normalize

SENSEVOICE_LANGUAGES = ("auto", "zh", "en", "yue", "ja", "ko", "nospeech")


def sensevoice_language(language: str | None) -> str:
    """SenseVoice's language key for a decode/training language (``None`` -> ``auto``)."""
    lang = (language or "auto").lower()
    if lang not in SENSEVOICE_LANGUAGES:
        raise ConfigError(f"SenseVoice language {language!r} is not one of {', '.join(SENSEVOICE_LANGUAGES)}")
    return lang


class SenseVoiceASR(FunASRModel):
    """A funasr ``SenseVoiceSmall``: greedy CTC, the decode language as its language query."""

    def _decode(self, feats: torch.Tensor, lens: torch.Tensor, options: DecodeOptions) -> list[str]:
        keys = [f"utt{i}" for i in range(len(feats))]
        results, _ = self.net.inference(
            data_in=feats,
            data_lengths=lens.clone(),  # SenseVoice adds its 4 query frames in place
            key=keys,
            tokenizer=self.tokenizer,
            frontend=self.infer_frontend,
            data_type="fbank",
            device=feats.device,
            language=sensevoice_language(options.language),
            use_itn=False,
        )
        return [r["text"] for r in results]

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = super().decoding_settings(options)
        settings.update(decoder="ctc-greedy", language=sensevoice_language(options.language), use_itn=False)
        return settings

    def text_ids(self, text: str) -> list[int]:
        """Token ids of the normalized transcript (no language/emotion prefix)."""
        ids = self.tokenizer.encode(normalize(text))
        blank = self.net.blank_id  # an unknown character must not become a CTC blank target
        return [i for i in ids if i != blank]

    def _label_prefix(self) -> list[int]:
        """``<|lang|><|NEUTRAL|><|Speech|><|woitn|>``: funasr's dataset defaults for SenseVoice targets."""
        language = sensevoice_language(self.spec.language)
        if language in ("auto", "nospeech"):
            raise ConfigError(
                f"SenseVoice training needs the transcripts' language (zh, yue, en, ja, ko), not {language!r}"
            )
        tags = (f"<|{language}|>", "<|NEUTRAL|>", "<|Speech|>", "<|woitn|>")  # funasr's dataset defaults
        ids = []
        for tag in tags:
            encoded = [i for i in self.tokenizer.encode(tag) if i != sentencepiece_space(self.tokenizer)]
            if len(encoded) != 1:
                raise ModelSourceError(f"{self.files.path}: the tokenizer has no single token for {tag}")
            ids.append(encoded[0])
        if ids[3] not in self.net.textnorm_int_dict:
            raise ModelSourceError(
                f"{self.files.path}: <|woitn|> is token {ids[3]}, but SenseVoiceSmall expects one of "
                f"{sorted(self.net.textnorm_int_dict)}; tokenizer and model do not match"
            )
        return ids
