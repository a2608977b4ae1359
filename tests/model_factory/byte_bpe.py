"""Byte-level BPE vocabularies of a given size, built offline (no corpus, no download).

The real Qwen2/Qwen3 (151,643 merges-learned tokens) and GLM-4 (GLM-ASR: 59,246) vocabularies are
learned from their publishers' training text and cannot be rebuilt here. This builds one of the
same kind (GPT-2 byte-to-unicode alphabet, ranked merges) and size, whose merges make every CJK
Unified Ideograph (and Extension A) a single token, as the real ones do for common characters:
the 256 bytes, then the UTF-8 lead-byte pairs of those characters, the characters, every other
byte pair (printable ASCII first), then 4-letter lowercase tokens until the size is reached.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import product

from transformers.convert_slow_tokenizer import bytes_to_unicode

from tests.model_factory.common import CJK_BLOCKS


def _byte_order() -> list[int]:
    """Byte values, printable ASCII first (their pairs rank first, as in a real English-heavy BPE)."""
    return sorted(range(256), key=lambda b: (not 0x20 <= b <= 0x7E, b))


def _merges(unicode: dict[int, str]) -> Iterator[tuple[str, str]]:
    cjk = [chr(c).encode() for first, last in CJK_BLOCKS for c in range(first, last + 1)]
    emitted: set[str] = set()

    def merge(left: str, right: str) -> Iterator[tuple[str, str]]:
        if left + right not in emitted:
            emitted.add(left + right)
            yield left, right

    for raw in cjk:
        yield from merge(unicode[raw[0]], unicode[raw[1]])
    for raw in cjk:
        yield from merge(unicode[raw[0]] + unicode[raw[1]], unicode[raw[2]])
    order = _byte_order()
    for a, b in product(order, order):
        yield from merge(unicode[a], unicode[b])
    letters = [unicode[c] for c in range(ord("a"), ord("z") + 1)]
    pairs = [a + b for a, b in product(letters, letters)]
    for left, right in product(pairs, pairs):
        yield from merge(left, right)


def byte_level_bpe(size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE's vocabulary (``size`` tokens, ids 0..size-1) and ranked merges."""
    unicode = bytes_to_unicode()
    vocab = {unicode[b]: i for i, b in enumerate(range(256))}
    merges: list[tuple[str, str]] = []
    for left, right in _merges(unicode):
        if len(vocab) >= size:
            break
        vocab[left + right] = len(vocab)
        merges.append((left, right))
    if len(vocab) < size:
        raise ValueError(f"cannot build {size} tokens, only {len(vocab)}")
    return vocab, merges
