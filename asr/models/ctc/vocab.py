"""Character vocabularies of CTC models: build, map, extend, and grow the output layer to match.

A new head gets ``<pad>`` (id 0, the CTC blank), ``<unk>``, ``|`` (word delimiter) and then
the sorted characters of the normalized training texts. A pretrained head keeps its own
vocabulary; characters outside it train as ``<unk>`` unless the vocabulary is extended.

>>> build_vocab(["长沙话，OK！", "好咯"])
{'<pad>': 0, '<unk>': 1, '|': 2, 'k': 3, 'o': 4, '咯': 5, '好': 6, '沙': 7, '话': 8, '长': 9}
>>> unknown_characters(["长沙话"], {"<pad>": 0, "<unk>": 1, "长": 2})
{'沙': 1, '话': 1}
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from pathlib import Path

import torch
from transformers import Wav2Vec2CTCTokenizer

from asr.text.normalize import normalize

PAD = "<pad>"
UNK = "<unk>"
DELIMITER = "|"


def build_vocab(texts: list[str]) -> dict[str, int]:
    """Vocabulary for a new CTC head: specials first, then the sorted normalized characters."""
    chars = sorted({ch for text in texts for ch in normalize(text)})
    return {tok: i for i, tok in enumerate([PAD, UNK, DELIMITER, *chars])}


def char_id(ch: str, vocab: dict[str, int]) -> int | None:
    """Id of one normalized character; upper-case vocabularies match lower-case letters."""
    if ch in vocab:
        return vocab[ch]
    return vocab.get(ch.upper())


def text_ids(text: str, vocab: dict[str, int], unk_id: int | None) -> list[int]:
    """Label ids of ``normalize(text)``; unknown characters become ``unk_id`` (dropped when None)."""
    ids = [char_id(ch, vocab) for ch in normalize(text)]
    ids = [unk_id if i is None else i for i in ids]
    return [i for i in ids if i is not None]


def unknown_characters(texts: list[str], vocab: dict[str, int]) -> dict[str, int]:
    """Counts of normalized characters the vocabulary lacks, most frequent first."""
    counts = Counter(ch for text in texts for ch in normalize(text) if char_id(ch, vocab) is None)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def extended_vocab(vocab: dict[str, int], texts: list[str]) -> tuple[dict[str, int], list[str]]:
    """``vocab`` plus the missing characters of ``texts`` (sorted) at ids after the current maximum."""
    added = sorted(unknown_characters(texts, vocab))
    start = max(vocab.values(), default=-1) + 1
    return {**vocab, **{ch: start + i for i, ch in enumerate(added)}}, added


def make_tokenizer(vocab: dict[str, int], like: Wav2Vec2CTCTokenizer | None = None) -> Wav2Vec2CTCTokenizer:
    """A character CTC tokenizer over ``vocab`` with the special tokens of ``like`` (or the defaults).

    Without ``like`` there are no ``<s>``/``</s>`` tokens: they would be appended as extra ids
    that the model's head does not have.
    """
    specials = {"unk_token": UNK, "pad_token": PAD, "bos_token": None, "eos_token": None}
    delimiter, lower = DELIMITER, False
    if like is not None:
        specials = {
            "unk_token": like.unk_token,
            "pad_token": like.pad_token,
            "bos_token": like.bos_token,
            "eos_token": like.eos_token,
        }
        delimiter, lower = like.word_delimiter_token, like.do_lower_case
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.json"
        vocab_file.write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        return Wav2Vec2CTCTokenizer(
            str(vocab_file), word_delimiter_token=delimiter, do_lower_case=lower, **specials
        )


@torch.no_grad()
def grow_lm_head(model: torch.nn.Module, vocab_size: int) -> int:
    """Grow ``model.lm_head`` to ``vocab_size`` outputs; new rows start at the mean of the old ones.

    Old rows are copied unchanged, so existing characters score exactly as before.
    Returns the number of rows added (0 when the head is already large enough).
    """
    old: torch.nn.Linear = model.lm_head
    extra = vocab_size - old.out_features
    if extra <= 0:
        return 0
    new = torch.nn.Linear(old.in_features, vocab_size, bias=old.bias is not None)
    new.to(device=old.weight.device, dtype=old.weight.dtype)
    new.weight[: old.out_features] = old.weight
    new.weight[old.out_features :] = old.weight.mean(dim=0, keepdim=True)
    if old.bias is not None:
        new.bias[: old.out_features] = old.bias
        new.bias[old.out_features :] = old.bias.mean()
    new.weight.requires_grad_(old.weight.requires_grad)
    if new.bias is not None and old.bias is not None:
        new.bias.requires_grad_(old.bias.requires_grad)
    model.lm_head = new
    model.config.vocab_size = vocab_size
    return extra
