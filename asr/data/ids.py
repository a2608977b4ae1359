"""Clip ids: CS-Mage spells each clip ``video_V_C`` (pkl, v2 split CSVs) and ``VV_CCCC``
(WAV file names, v1 lists). Manifests use ``video_V_C`` as ``id`` and keep ``VV_CCCC`` as
``source_id``; ids of other corpora pass through unchanged.

>>> to_source_id("video_1_1"), to_video_id("01_0001")
('01_0001', 'video_1_1')
>>> canonical_id("01_0001"), canonical_id("spk1-utt2")
(('video_1_1', '01_0001'), ('spk1-utt2', 'spk1-utt2'))
"""

from __future__ import annotations

import re

_VIDEO_ID = re.compile(r"video_(\d+)_(\d+)")
_SOURCE_ID = re.compile(r"(\d{2,})_(\d{4,})")


def to_source_id(video_id: str) -> str:
    """``video_1_1`` -> ``01_0001`` (ValueError for other shapes)."""
    match = _VIDEO_ID.fullmatch(video_id)
    if not match:
        raise ValueError(f"not a video_V_C id: {video_id!r}")
    return f"{int(match[1]):02d}_{int(match[2]):04d}"


def to_video_id(source_id: str) -> str:
    """``01_0001`` -> ``video_1_1`` (ValueError for other shapes)."""
    match = _SOURCE_ID.fullmatch(source_id)
    if not match:
        raise ValueError(f"not a VV_CCCC id: {source_id!r}")
    return f"video_{int(match[1])}_{int(match[2])}"


def canonical_id(raw: str) -> tuple[str, str]:
    """``(id, source_id)`` for any clip id: CS-Mage ids in either spelling, others unchanged."""
    if _VIDEO_ID.fullmatch(raw):
        return raw, to_source_id(raw)
    if _SOURCE_ID.fullmatch(raw):
        return to_video_id(raw), raw
    return raw, raw
