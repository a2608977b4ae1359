"""Paraformer: funasr's non-autoregressive CIF model, decoded greedily in one pass."""

from __future__ import annotations

import re
from typing import Any

import torch

from asr.models.funasr.model import FunASRModel
from asr.models.spec import DecodeOptions
from asr.text.normalize import normalize

_CJK = "\u3400-\u4dbf\u4e00-\u9fff"
_RUNS = re.compile(rf"[{_CJK}]+|[0-9a-z]+")


class ParaformerASR(FunASRModel):
    """A funasr ``Paraformer`` (or a variant of it): the predictor counts tokens, the decoder fills them."""

    def _decode(self, feats: torch.Tensor, lens: torch.Tensor, options: DecodeOptions) -> list[str]:
        from funasr.utils.postprocess_utils import sentence_postprocess  # optional dependency (funasr extra)

        net = self.net
        enc, enc_lens = net.encode(feats, lens)
        if isinstance(enc, tuple):
            enc = enc[0]
        embeds, n_tokens = net.calc_predictor(enc, enc_lens)[:2]
        n_tokens = n_tokens.round().long()
        if int(n_tokens.max()) < 1:
            return [""] * len(feats)
        logits = net.cal_decoder_with_predictor(enc, enc_lens, embeds, n_tokens)[0]
        drop = {net.sos, net.eos, net.blank_id}
        texts = []
        for row, n in zip(logits, n_tokens.tolist(), strict=True):
            ids = [t for t in row[:n].argmax(dim=-1).tolist() if t not in drop]
            tokens = self.tokenizer.ids2tokens(ids)
            if hasattr(self.tokenizer, "bpemodel"):
                texts.append(self.tokenizer.tokens2text(tokens))
            else:
                texts.append(sentence_postprocess(tokens)[0])
        return texts

    def decoding_settings(self, options: DecodeOptions) -> dict[str, Any]:
        settings = super().decoding_settings(options)
        settings.update(decoder="paraformer-nar-greedy", language=None)
        return settings

    def text_ids(self, text: str) -> list[int]:
        """Token ids of the normalized transcript."""
        # CharTokenizer with a seg_dict looks words up whole: keep CJK and latin runs apart
        return list(self.tokenizer.encode(" ".join(_RUNS.findall(normalize(text)))))
