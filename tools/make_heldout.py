"""Generate a second synthetic corpus, held out from the demo: real CS-Mage transcripts, other voices.

The demo (:mod:`tools.make_demo`) speaks 60 sentences written for this project with four
espeak-ng speakers. Numbers measured only on it may not carry over, so this set takes ``--clips``
transcripts of the real corpus's v2 test split (``splits-v2/test.csv`` and
``transcripts_1085_punct.txt`` of the CS-Mage metadata folder, see its README), chosen evenly
spaced among those of ``--min-chars``..``--max-chars`` Chinese characters with nothing else but
punctuation, and speaks each once with voices, variants, speeds and pitches the demo does not use.
espeak-ng reads the characters itself (no hand-written pinyin), so its readings differ from the
demo's too. The layout is the demo's (``<out>/cs-mage-heldout/audio_wav.zip`` and
``CS-Mage_fulldata.pkl``, ``<out>/manifest.json``), so ``asr prepare --data-root`` reads it, and
the bytes are deterministic for a given espeak-ng and zlib, as the demo's are.

The output is not committed: about 5 MB of audio, and the transcripts are the corpus authors'
(the metadata folder is for tests and checks only). ``make heldout`` writes and prepares it::

    make heldout       # python -m tools.make_heldout --cs-mage ../shared/cs-mage --out runs/heldout
                       # asr prepare --data-root runs/heldout/cs-mage-heldout --out runs/heldout/data
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from asr.arguments import positive_int
from asr.data.demo_sentences import DEMO_LINES, DemoSentence
from asr.errors import ASRError, ConfigError
from tools.make_demo import DemoSummary, Speaker, make_demo

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CS_MAGE = REPO.parent / "shared" / "cs-mage"
CORPUS = "cs-mage-heldout"
TRANSCRIPTS = "transcripts_1085_punct.txt"
TEST_SPLIT = "splits-v2/test.csv"
# Long enough for the longest transcripts kept (espeak-ng speaks about 3 characters a second).
MAX_SECONDS = 16.0

# None of these voice/variant/speed/pitch combinations is one of the demo's SPEAKERS.
HELDOUT_SPEAKERS: tuple[Speaker, ...] = (
    Speaker("cmn-f4-brisk", "cmn-latn-pinyin+f4", 190, 62),
    Speaker("cmn-m2-slow", "cmn-latn-pinyin+m2", 155, 40),
    Speaker("cmn-klatt-mid", "cmn-latn-pinyin+klatt2", 170, 55),
    Speaker("yue-m3-low", "yue+m3", 160, 35),
)

_CJK = re.compile(r"[\u4e00-\u9fff]")
_PUNCT = re.compile(r"[，。！？、；：,.!?;:\s]")


def read_transcripts(path: Path) -> dict[str, str]:
    """``<v1 id> <text>`` lines (the punctuated file has no final newline) keyed by v1 id."""
    table = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        key, _, text = line.partition(" ")
        if not text.strip():
            raise ASRError(f"{path}:{number}: expected '<id> <text>'")
        table[key] = text.strip()
    return table


def v1_id(v2_id: str) -> str:
    """``video_1_1`` -> ``01_0001`` (the README's mapping between the two protocols).

    >>> v1_id("video_12_34")
    '12_0034'
    """
    try:
        _, video, clip = v2_id.split("_")
        return f"{int(video):02d}_{int(clip):04d}"
    except ValueError:
        raise ASRError(f"{v2_id!r} is not a CS-Mage v2 id (video_V_C)") from None


def speakable(text: str, min_chars: int, max_chars: int) -> bool:
    """Only Chinese characters and punctuation, ``min_chars``..``max_chars`` characters.

    >>> speakable("谢谢大家。", 4, 20), speakable("5G好快", 2, 20), speakable("好。", 4, 20)
    (True, False, False)
    """
    bare = _PUNCT.sub("", text)
    return bool(bare) and not _CJK.sub("", bare) and min_chars <= len(bare) <= max_chars


def select_sentences(
    cs_mage: Path, count: int, min_chars: int = 5, max_chars: int = 24
) -> list[DemoSentence]:
    """``count`` transcripts of the v2 test split, evenly spaced among the speakable ones in
    (video, clip) order; the text goes to espeak-ng as it is, in both fields (see the module doc)."""
    paths = [cs_mage / TRANSCRIPTS, cs_mage / TEST_SPLIT]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ASRError(
            f"--cs-mage {cs_mage}: {', '.join(missing)} not found; pass the CS-Mage metadata folder "
            "(transcripts_1085_punct.txt, splits-v2/), e.g. --cs-mage /work/shared/cs-mage"
        )
    transcripts = read_transcripts(paths[0])
    with paths[1].open(encoding="utf-8", newline="") as f:
        ids = [row["sample_id"] for row in csv.DictReader(f) if row.get("split") == "test"]
    order = sorted(ids, key=lambda i: tuple(int(n) for n in v1_id(i).split("_")))
    demo = {line.text for line in DEMO_LINES}
    texts = []
    for utt_id in order:
        text = transcripts.get(v1_id(utt_id))
        if text and text not in demo and text not in texts and speakable(text, min_chars, max_chars):
            texts.append(text)
    if count > len(texts):
        raise ConfigError(
            f"--clips {count}: only {len(texts)} test transcripts have {min_chars}..{max_chars} characters"
        )
    picked = [texts[i * len(texts) // count] for i in range(count)]
    return [DemoSentence(text, text) for text in picked]


def make_heldout(
    cs_mage: Path,
    out: Path,
    count: int = 40,
    speakers: Sequence[Speaker] = HELDOUT_SPEAKERS,
    *,
    min_chars: int = 5,
    max_chars: int = 24,
    seed: int = 1,
    jobs: int = 2,
) -> DemoSummary:
    """Write the held-out corpus under ``out`` (``cs-mage-heldout/`` and ``manifest.json``)."""
    if not cs_mage.is_dir():
        raise ASRError(
            f"--cs-mage {cs_mage}: no such folder; the held-out set needs the CS-Mage metadata "
            "(transcripts and splits, see its README), e.g. --cs-mage /work/shared/cs-mage"
        )
    if not 1 <= min_chars <= max_chars:
        raise ConfigError("--min-chars must be >= 1 and <= --max-chars")
    sentences = select_sentences(cs_mage, count, min_chars, max_chars)
    source = {"transcripts": TRANSCRIPTS, "split": TEST_SPLIT, "min_chars": min_chars, "max_chars": max_chars}
    return make_demo(
        out,
        speakers,
        per_sentence=1,
        videos=0,
        seed=seed,
        jobs=jobs,
        sentences=sentences,
        corpus=CORPUS,
        max_seconds=MAX_SECONDS,
        generator="tools/make_heldout.py",
        source=source,
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cs-mage",
        type=Path,
        default=DEFAULT_CS_MAGE,
        help=f"CS-Mage metadata folder (default: {DEFAULT_CS_MAGE})",
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "heldout", help="output folder")
    parser.add_argument("--clips", type=positive_int, default=40, help="transcripts to speak (default: 40)")
    parser.add_argument("--min-chars", type=positive_int, default=5)
    parser.add_argument("--max-chars", type=positive_int, default=24)
    parser.add_argument("--seed", type=int, default=1, help="noise seed (default: 1; the demo's is 0)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="parallel espeak-ng processes")


def run(args: argparse.Namespace) -> int:
    summary = make_heldout(
        args.cs_mage,
        args.out,
        args.clips,
        min_chars=args.min_chars,
        max_chars=args.max_chars,
        seed=args.seed,
        jobs=args.jobs,
    )
    print(
        f"{summary.clips} clips ({summary.seconds:.1f} s) with espeak-ng {summary.espeak_ng}; "
        f"{summary.total_bytes / 1e6:.2f} MB in {args.out}"
    )
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
