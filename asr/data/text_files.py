"""Strict UTF-8 for corpus text: transcripts, split files, JSON lines.

Text is never decoded with replacement characters: bytes that are not UTF-8 are an error
naming the file, the byte offset and line, and the encoding they look like (Chinese corpora
are often saved as GB18030/GBK or Big5), so the user converts the file instead of training
on mojibake.

>>> import tempfile
>>> path = Path(tempfile.mkdtemp()) / "text"
>>> _ = path.write_bytes("u1 好咯\\nu2 长沙话\\n".encode("gbk"))
>>> read_text_file(path)  # doctest: +ELLIPSIS
Traceback (most recent call last):
asr.errors.DataError: .../text: not UTF-8 (invalid start byte at byte 3, line 1); it looks like GB18030 (GBK): convert it with `iconv -f GB18030 -t UTF-8`
>>> guess_encoding("長沙話".encode("big5"))
'Big5'
"""

from __future__ import annotations

import codecs
from pathlib import Path

from asr.errors import DataError

# Tried in this order; the first that decodes the bytes (and reads as text) is named.
_CANDIDATES = (("gb18030", "GB18030 (GBK)"), ("big5", "Big5"))
_ICONV_NAMES = {"GB18030 (GBK)": "GB18030", "Big5": "BIG5", "UTF-16": "UTF-16"}


def guess_encoding(data: bytes) -> str | None:
    """A readable name of the encoding ``data`` looks like, or None.

    Only a hint for error messages. GB18030 and Big5 overlap, so when both decode, the one
    whose characters are more often in the common simplified set (GB2312) or traditional set
    (Big5 level 1) wins.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "UTF-16"
    decoded = {}
    for codec, name in _CANDIDATES:
        try:
            decoded[name] = data.decode(codec)
        except UnicodeDecodeError:
            continue
    if not decoded:
        return None
    if len(decoded) == 1:
        return next(iter(decoded))
    return max(decoded, key=lambda name: _common_share(decoded[name], name))


def _common_share(text: str, name: str) -> float:
    """Share of the non-ASCII characters of ``text`` that are common in that script."""
    wide = [c for c in text if ord(c) > 0x7F]
    if not wide:
        return 1.0
    common = 0
    for char in wide:
        try:
            encoded = char.encode("gb2312" if name.startswith("GB") else "big5")
        except UnicodeEncodeError:
            continue
        if name.startswith("GB") or 0xA440 <= int.from_bytes(encoded, "big") <= 0xC67E:  # Big5 level 1
            common += 1
    return common / len(wide)


def describe_bad_bytes(data: bytes, err: UnicodeDecodeError, offset: int = 0, *, advice: bool = True) -> str:
    """``(invalid start byte at byte 3, line 1); it looks like GB18030 ...`` for ``err`` on ``data``.

    ``offset``: bytes dropped before decoding (a BOM); ``advice``: add the iconv command line.
    """
    start = offset + err.start
    line = data.count(b"\n", 0, start) + 1
    text = f"({err.reason} at byte {start}, line {line})"
    guess = guess_encoding(data)
    if guess:
        text += f"; it looks like {guess}"
        if advice:
            text += f": convert it with `iconv -f {_ICONV_NAMES[guess]} -t UTF-8`"
    return text


def decode_utf8(data: bytes, where: str | Path) -> str:
    """``data`` decoded as UTF-8 (a leading BOM dropped); DataError naming ``where`` otherwise."""
    offset = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[offset:].decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not UTF-8 {describe_bad_bytes(data, err, offset)}") from None


def read_text_file(path: str | Path) -> str:
    """The text of ``path``, strictly UTF-8 (BOM allowed); DataError for anything else."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from err
    return decode_utf8(data, path)
