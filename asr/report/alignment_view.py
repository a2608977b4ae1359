"""Aligned reference/hypothesis characters, confusion counts and repetition loops for the error report.

The alignment is the scorer's (:func:`asr.metrics.alignment.align` uses the same
``Levenshtein.editops``), so the coloured characters add up to the S/D/I counts.

>>> aligned("我是长沙人", "我事长沙人啊")
[['=', '我', '我'], ['S', '是', '事'], ['=', '长沙人', '长沙人'], ['I', '', '啊']]
>>> repetition_loop("好的好的好的好的好的"), repetition_loop("长沙话")
('好的', None)
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from rapidfuzz.distance import Levenshtein

# A unit of 1-10 characters repeated at least four more times in a row (five or more in all).
_LOOP = re.compile(r"(.{1,10}?)\1{4,}", re.S)
MIN_LOOP_CHARS = 6


def aligned(ref: str, hyp: str) -> list[list[str]]:
    """``[op, ref_text, hyp_text]`` segments, ``op`` one of ``=``, ``S``, ``D``, ``I``; runs of
    matching characters are merged into one segment."""
    segments: list[list[str]] = []
    i = j = 0

    def push(op: str, r: str, h: str) -> None:
        if op == "=" and segments and segments[-1][0] == "=":
            segments[-1][1] += r
            segments[-1][2] += h
        else:
            segments.append([op, r, h])

    for tag, si, dj in Levenshtein.editops(ref, hyp).as_list():
        while i < si and j < dj:
            push("=", ref[i], hyp[j])
            i, j = i + 1, j + 1
        if tag == "replace":
            push("S", ref[i], hyp[j])
            i, j = i + 1, j + 1
        elif tag == "delete":
            push("D", ref[i], "")
            i += 1
        else:
            push("I", "", hyp[j])
            j += 1
    while i < len(ref) and j < len(hyp):
        push("=", ref[i], hyp[j])
        i, j = i + 1, j + 1
    return segments


def repetition_loop(text: str) -> str | None:
    """The repeated unit when ``text`` holds a loop (a unit repeated 5+ times, 6+ characters)."""
    for match in _LOOP.finditer(text or ""):
        if len(match.group(0)) >= MIN_LOOP_CHARS and match.group(1).strip():
            return match.group(1)
    return None


def confusions(segment_lists: list[list[list[str]]], top: int = 20) -> dict[str, list[tuple[str, int]]]:
    """The most frequent substitution pairs (``"是→事"``), deleted and inserted characters."""
    subs: Counter[str] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for segments in segment_lists:
        for op, r, h in segments:
            if op == "S":
                subs[f"{r}→{h}"] += 1
            elif op == "D":
                dels[r] += 1
            elif op == "I":
                ins[h] += 1
    return {name: c.most_common(top) for name, c in (("substitutions", subs), ("deletions", dels),
                                                    ("insertions", ins))}  # fmt: skip


def counts(segments: list[list[str]]) -> dict[str, Any]:
    """S/D/I counted from the segments (a check against the scorer's numbers)."""
    c = Counter(op for op, _, _ in segments)
    return {"sub": c["S"], "del": c["D"], "ins": c["I"]}
