"""Whisper's own options: decoding (``asr evaluate`` flags) and fine-tuning (``model_options``).

>>> WhisperTrainOptions(audio_context="AUTO").audio_context
'auto'
>>> WhisperTrainOptions(consistency_weight=-1.0)
Traceback (most recent call last):
...
asr.errors.ConfigError: model_options.consistency_weight must be >= 0, got -1.0
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from asr.arguments import non_negative_float
from asr.errors import ASRError, ConfigError
from asr.models.spec import DecodeOptions
from asr.models.whisper.context import parse_audio_context

# The backends that pack by default where the decoding context is 30 s anyway (--no-packing
# turns it off): BENCHMARKS.md ("Packing short clips") measured CTranslate2 packed faster and no
# worse in CER or SER than unpacked on the demo and a held-out set; transformers packed was
# slower and worse in CER, so it packs only with --packing.
PACKING_BY_DEFAULT_BACKENDS = frozenset({"ct2"})


@dataclass(frozen=True)
class WhisperDecodeOptions(DecodeOptions):
    """The shared decoding settings plus Whisper's task, audio context and packing.

    ``audio_context``: full | auto | seconds; ``None``: the checkpoint's own (see
    :mod:`asr.models.whisper.context`). ``packing``: several short clips per 30 s window,
    ``packing_gap_s`` of silence apart (see :mod:`asr.models.whisper.packing`); True also
    makes the context 30 s, ``None``: on where the context is 30 s anyway and the backend is one of
    :data:`PACKING_BY_DEFAULT_BACKENDS`.
    """

    task: str = "transcribe"
    packing: bool | None = None
    packing_gap_s: float = 1.0
    audio_context: str | None = None


@dataclass
class WhisperTrainOptions:
    """Whisper fine-tuning settings, the ``model_options`` section of a fine-tuning config.

    ``audio_context``: seconds the encoder sees (full = 30 s; auto = the batch's longest clip
    + 1 s, in 5 s buckets, at least 10 s; a number = auto with that floor), saved with the
    checkpoint. ``consistency_weight``: at a short context, the weight of the pull towards the
    original full-context encoder states. ``freeze_cross_kv``: the decoder's cross-attention
    key/value projections stay frozen, so with a frozen encoder they are cached per clip.
    """

    audio_context: str = "full"
    consistency_weight: float = 0.0
    freeze_cross_kv: bool = False

    def __post_init__(self) -> None:
        self.audio_context = parse_audio_context(self.audio_context)
        if self.consistency_weight < 0:
            raise ConfigError(f"model_options.consistency_weight must be >= 0, got {self.consistency_weight}")


def audio_context_arg(value: str) -> str:
    """argparse type for ``--audio-context`` (a bad value is a usage error, exit 2)."""
    try:
        return parse_audio_context(value)
    except ASRError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_decode_arguments(parser: argparse.ArgumentParser) -> None:
    """Whisper's ``asr evaluate`` flags."""
    group = parser.add_argument_group("Whisper decoding")
    group.add_argument(
        "--audio-context",
        default=None,
        type=audio_context_arg,
        help="Whisper: full (30 s), auto (the batch's longest clip + 1 s in 5 s buckets, at least "
        "10 s) or seconds (auto with that floor); default: what the checkpoint was fine-tuned at, "
        "else auto (measured no worse than 30 s on stock whisper-base; see BENCHMARKS.md)",
    )
    group.add_argument(
        "--packing",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Whisper: decode several short clips per 30 s window (--packing also sets the context "
        "to 30 s; a window whose timestamps do not fit its clips is decoded unpacked); default: on "
        "where the context is 30 s and the backend is ct2 (see BENCHMARKS.md, 'Packing short clips')",
    )
    group.add_argument(
        "--packing-gap", type=non_negative_float, default=1.0, help="silence between packed clips (s)"
    )


def decode_options(
    shared: DecodeOptions, task: str, args: argparse.Namespace | None = None
) -> WhisperDecodeOptions:
    """``shared`` as Whisper options: from the parsed flags when given, else kept or defaulted."""
    if args is None:
        if isinstance(shared, WhisperDecodeOptions):
            return shared
        return WhisperDecodeOptions(**shared.shared(), task=task)
    return WhisperDecodeOptions(
        **shared.shared(),
        task=task,
        audio_context=args.audio_context,
        packing=args.packing,
        packing_gap_s=args.packing_gap,
    )
