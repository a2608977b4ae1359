"""What corpus readers hand to validation: candidate utterances and suspect reports.

A reader turns one corpus layout into :class:`Candidate` rows (audio file + raw
transcript, not yet checked) and :class:`Suspect` rows for what it could not pair up
(``missing_audio``, ``no_transcript``, ...). ``asr.data.validate`` then checks audio and
text and builds the manifest rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from asr.data.ids import canonical_id

T = TypeVar("T")

# Problem names written to suspects.csv.
MISSING_AUDIO = "missing_audio"
UNREADABLE_AUDIO = "unreadable_audio"
NON_FINITE_AUDIO = "non_finite_audio"
TOO_SHORT = "too_short"
TOO_LARGE = "too_large"
INVALID_TEXT = "invalid_text"
WRONG_SAMPLE_RATE = "wrong_sample_rate"
WRONG_CHANNELS = "wrong_channels"
EMPTY_TEXT = "empty_text"
EMPTY_AFTER_NORMALIZATION = "empty_after_normalization"
MARKUP = "markup"
IMPLAUSIBLE_CPS = "implausible_cps"
LONGER_THAN_WINDOW = "longer_than_30s"  # kept: Whisper decodes it in windows (asr.data.windows)
DUPLICATE_ID = "duplicate_id"
NO_TRANSCRIPT = "no_transcript"
MISSING_FROM_SPLIT_FILES = "missing_from_split_files"

PROBLEMS = (
    MISSING_AUDIO,
    UNREADABLE_AUDIO,
    NON_FINITE_AUDIO,
    TOO_SHORT,
    TOO_LARGE,
    INVALID_TEXT,
    WRONG_SAMPLE_RATE,
    WRONG_CHANNELS,
    EMPTY_TEXT,
    EMPTY_AFTER_NORMALIZATION,
    MARKUP,
    IMPLAUSIBLE_CPS,
    LONGER_THAN_WINDOW,
    DUPLICATE_ID,
    NO_TRANSCRIPT,
    MISSING_FROM_SPLIT_FILES,
)

# Problems that keep an utterance out of the manifests.
EXCLUDING = frozenset(
    {MISSING_AUDIO, UNREADABLE_AUDIO, NON_FINITE_AUDIO, TOO_SHORT, TOO_LARGE, INVALID_TEXT, EMPTY_TEXT,
     EMPTY_AFTER_NORMALIZATION, DUPLICATE_ID, NO_TRANSCRIPT, MISSING_FROM_SPLIT_FILES}
)  # fmt: skip


class IdText(NamedTuple):
    """An ``<id> <text>`` pair as written in the corpus.

    ``line`` is its line number in a text file (from 1) or its position in a pkl's lists (from 0).
    """

    id: str
    text: str
    line: int


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

    def flag(self, utt_id: str, file: str, problem: str, detail: str = "") -> None:
        """Report a problem (a row of suspects.csv)."""
        self.suspects.append(Suspect(utt_id, file, problem, detail))


def keep_first(
    items: Iterable[tuple[str, str, T]], suspects: list[Suspect], detail: Callable[[T], str]
) -> dict[str, T]:
    """Index ``(key, where, value)`` by key, keeping the first value of each key.

    A repeated key is a ``duplicate_id`` suspect at ``where``, described by ``detail(first_value)``.

    >>> suspects = []
    >>> keep_first([("a", "t:1", 1), ("b", "t:2", 2), ("a", "t:3", 3)], suspects, lambda v: f"first: {v}")
    {'a': 1, 'b': 2}
    >>> suspects
    [Suspect(id='a', file='t:3', problem='duplicate_id', detail='first: 1')]
    """
    index: dict[str, T] = {}
    for key, where, value in items:
        if key in index:
            suspects.append(Suspect(canonical_id(key)[0], where, DUPLICATE_ID, detail(index[key])))
        else:
            index[key] = value
    return index
