"""Text normalization exactly as the CS-Mage scoring protocol defines it.

Protocol: Unicode NFKC, ASCII lowercase, keep only CJK ideographs
(U+3400-U+4DBF, U+4E00-U+9FFF), ``0-9`` and ``a-z``; drop everything else.
Two options, off by default and recorded in every metrics file: Traditional to
Simplified conversion (OpenCC ``t2s``) and stripping of model tags such as
``<|zh|>`` or ``<|HAPPY|>`` *before* normalization (otherwise their letters would
survive as ``zh`` / ``happy``).

>>> normalize("长沙话，ＡＢＣ１２３！")
'长沙话abc123'
>>> normalize("<|zh|><|NEUTRAL|>好咯", NormOptions(strip_tags=True))
'好咯'
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

_KEEP = re.compile(r"[^\u3400-\u4dbf\u4e00-\u9fff0-9a-z]")
_TAG = re.compile(r"<\|[^<>|]*\|>")


@dataclass(frozen=True)
class NormOptions:
    """Optional normalization steps beyond the protocol (all off = the protocol)."""

    t2s: bool = False
    strip_tags: bool = False

    def as_dict(self) -> dict[str, bool]:
        return asdict(self)


PROTOCOL = NormOptions()


@lru_cache(maxsize=1)
def _t2s_converter():
    import opencc  # only the optional t2s conversion (off in the protocol) needs it

    return opencc.OpenCC("t2s")


def strip_model_tags(text: str) -> str:
    """Remove ``<|...|>`` tags (Whisper language/task, SenseVoice language/emotion/event)."""
    return _TAG.sub("", text)


def normalize(text: str | None, options: NormOptions | None = None) -> str:
    """Normalize one transcript for CER scoring (see module docstring)."""
    if not text:
        return ""
    opts = options or PROTOCOL
    if opts.strip_tags:
        text = strip_model_tags(text)
    text = unicodedata.normalize("NFKC", text)
    if opts.t2s:
        text = _t2s_converter().convert(text)
    text = "".join(ch.lower() if ch.isascii() else ch for ch in text)
    return _KEEP.sub("", text)
