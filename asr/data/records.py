"""What corpus readers hand to validation: candidate utterances and suspect reports.

A reader turns one corpus layout into :class:`Candidate` rows (audio file + raw
transcript, not yet checked) and :class:`Suspect` rows for what it could not pair up
(``missing_audio``, ``no_transcript``, ...). ``asr.data.validate`` then checks audio and
text and builds the manifest rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Problem names written to suspects.csv.
MISSING_AUDIO = "missing_audio"
UNREADABLE_AUDIO = "unreadable_audio"
WRONG_SAMPLE_RATE = "wrong_sample_rate"
WRONG_CHANNELS = "wrong_channels"
EMPTY_TEXT = "empty_text"
EMPTY_AFTER_NORMALIZATION = "empty_after_normalization"
MARKUP = "markup"
IMPLAUSIBLE_CPS = "implausible_cps"
DUPLICATE_ID = "duplicate_id"
NO_TRANSCRIPT = "no_transcript"
MISSING_FROM_SPLIT_FILES = "missing_from_split_files"

PROBLEMS = (
    MISSING_AUDIO,
    UNREADABLE_AUDIO,
    WRONG_SAMPLE_RATE,
    WRONG_CHANNELS,
    EMPTY_TEXT,
    EMPTY_AFTER_NORMALIZATION,
    MARKUP,
    IMPLAUSIBLE_CPS,
    DUPLICATE_ID,
    NO_TRANSCRIPT,
    MISSING_FROM_SPLIT_FILES,
)

# Problems that keep an utterance out of the manifests.
EXCLUDING = frozenset(
    {MISSING_AUDIO, UNREADABLE_AUDIO, EMPTY_TEXT, EMPTY_AFTER_NORMALIZATION, DUPLICATE_ID, NO_TRANSCRIPT,
     MISSING_FROM_SPLIT_FILES}
)  # fmt: skip


@dataclass
class Candidate:
    """An audio file paired with its raw transcript, as found in the corpus.

    ``text_origin`` says where the transcript came from (``text:12``, ``pkl[3]``) for reports;
    ``split`` is only set by layouts that carry one (our own manifests).
    """

    id: str
    source_id: str
    audio: Path
    text: str
    format: str
    text_origin: str = ""
    split: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suspect:
    """One row of suspects.csv."""

    id: str
    file: str
    problem: str
    detail: str = ""

    def as_row(self) -> dict[str, str]:
        return {"id": self.id, "file": self.file, "problem": self.problem, "detail": self.detail}


@dataclass
class ReadResult:
    """Output of a corpus reader."""

    format: str
    candidates: list[Candidate] = field(default_factory=list)
    suspects: list[Suspect] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
