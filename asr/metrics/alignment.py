"""Exact edit-distance alignment (rapidfuzz) with substitution/deletion/insertion counts.

The reference is the source and the hypothesis the target: a *deletion* is a reference
unit missing from the hypothesis, an *insertion* an extra hypothesis unit. rapidfuzz
returns one minimal alignment (unit costs); when several minimal alignments exist the
total is the same but the S/D/I split follows rapidfuzz's deterministic backtrace.

Alignment strings list the edit operations, separated by single spaces, each as
``<op><pos>:<unit>``:

- ``S<i>:<ref>><hyp>`` the reference character at index ``i`` became ``<hyp>``,
- ``D<i>:<ref>`` the reference character at index ``i`` is missing,
- ``I<i>:<hyp>`` ``<hyp>`` was inserted before reference index ``i``
  (``i == len(ref)`` means at the end).

Indices are 0-based positions in the *normalized* reference. Each operation covers exactly
one character, so the string is unambiguous even though digits are kept by normalization.
An empty string means no errors.

>>> align("我是长沙人", "我事长沙人啊")
Alignment(sub=1, dele=0, ins=1, ops='S1:是>事 I5:啊')
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import NamedTuple

from rapidfuzz.distance import Levenshtein


class Alignment(NamedTuple):
    """Counts of one minimal alignment and its operation string (see module docstring)."""

    sub: int
    dele: int
    ins: int
    ops: str

    @property
    def errors(self) -> int:
        return self.sub + self.dele + self.ins


def edit_counts(ref: Sequence[Hashable], hyp: Sequence[Hashable]) -> tuple[int, int, int]:
    """``(substitutions, deletions, insertions)`` of a minimal alignment of two sequences.

    Works on strings (characters) and on lists of words alike.

    >>> edit_counts(["长沙", "人"], ["长沙"])
    (0, 1, 0)
    """
    if not ref:
        return 0, 0, len(hyp)
    if not hyp:
        return 0, len(ref), 0
    sub = dele = ins = 0
    for tag, _, _ in Levenshtein.editops(ref, hyp).as_list():
        if tag == "replace":
            sub += 1
        elif tag == "delete":
            dele += 1
        else:
            ins += 1
    return sub, dele, ins


def align(ref: str, hyp: str) -> Alignment:
    """Character alignment of two normalized strings with counts and an operation string."""
    sub = dele = ins = 0
    parts: list[str] = []
    for tag, i, j in Levenshtein.editops(ref, hyp).as_list():
        if tag == "replace":
            sub += 1
            parts.append(f"S{i}:{ref[i]}>{hyp[j]}")
        elif tag == "delete":
            dele += 1
            parts.append(f"D{i}:{ref[i]}")
        else:
            ins += 1
            parts.append(f"I{i}:{hyp[j]}")
    return Alignment(sub, dele, ins, " ".join(parts))
