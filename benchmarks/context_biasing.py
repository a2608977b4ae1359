"""Context biasing: does naming rare places in the context prompt lower their error?

    python -m benchmarks.context_biasing [--model DIR] [--backend torch|ct2]

Decodes clips through the path ``asr evaluate`` takes (:func:`asr.inference.transcribe_batch`:
a global ``--context``, or each utterance's ``context`` field) under four conditions:

- no context;
- all the set's names as a global ``--context`` (``长沙，岳麓山，...``);
- each utterance's own names as its ``context`` (utterances without a name: none);
- a decoy: as many unrelated names (places elsewhere in China, in no clip) as a global context.

The clips: the demo corpus (``asr prepare`` of ``demo/cs-mage-demo``), its test split and all
120 clips. Its sentences hold six names, all places or shops (no person names), each in one
sentence spoken by two voices: 2 occurrences in the test split, 12 in all. (A second set, the
CS-Mage transcripts that name a Changsha/Hunan place spoken by espeak-ng's character-reading
``cmn`` voice, was tried and dropped: espeak-ng 1.51 reads those characters as tone-numbered
syllables with English digits, and whisper-base heard digit strings, CER above 1.)

Per condition: CER over all clips (the protocol normalization), and over the names'
occurrences in the references: how many the hypothesis holds exactly, the CER of the name
spans (errors of the character alignment that fall on a name's characters, insertions inside
it included), and "false names": names (decoys too) in a hypothesis that its reference lacks,
which a prompt can also cause. Saves ``runs/benchmarks/context-biasing.json`` and rewrites that
section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rapidfuzz.distance import Levenshtein

from asr.data.audio import load_audio
from asr.data.manifest import Utterance, read_manifest
from asr.inference import transcribe_batch
from asr.metrics import score
from asr.models import load_model
from asr.models.spec import DecodeOptions
from asr.text.normalize import normalize
from benchmarks.markdown import add_common_arguments, check_writable, publish, table

REPO = Path(__file__).resolve().parents[1]
TITLE = "Context biasing: rare names in the context prompt"
SEP = "，"
# Every name the demo sentences (asr/data/demo_sentences.py) hold: five places and a tea shop.
DEMO_NAMES = ("长沙", "岳麓山", "橘子洲", "坡子街", "五一广场", "茶颜悦色")
# Unrelated places, in no demo sentence.
DECOYS = ("杭州", "西湖", "鼓浪屿", "宽窄巷子", "夫子庙", "大雁塔")


@dataclass
class ClipSet:
    """Clips of one set: utterances (references in ``text``), their audio, the names to look for."""

    name: str
    utts: list[Utterance]
    waves: list[np.ndarray]
    names: tuple[str, ...]
    subsets: dict[str, list[int]]  # subset name -> indices into utts


def name_spans(ref: str, names: Sequence[str]) -> list[tuple[int, int, str]]:
    """``(start, end, name)`` of every occurrence of ``names`` in ``ref``, longest name first, no overlaps.

    >>> name_spans("去岳麓山和长沙", ["长沙", "岳麓山"])
    [(1, 4, '岳麓山'), (5, 7, '长沙')]
    """
    taken = [False] * len(ref)
    spans = []
    for name in sorted(names, key=len, reverse=True):
        start = ref.find(name)
        while start >= 0:
            if not any(taken[start : start + len(name)]):
                spans.append((start, start + len(name), name))
                taken[start : start + len(name)] = [True] * len(name)
            start = ref.find(name, start + 1)
    return sorted(spans)


def span_errors(ref: str, hyp: str, spans: Sequence[tuple[int, int, str]]) -> list[int]:
    """Errors of a minimal character alignment that fall on each span: its characters substituted
    or deleted, and characters inserted strictly inside it (an insertion at a name's edge is not
    counted: a minimal alignment may place an error there or on the name, so this is a lower bound).

    >>> span_errors("去岳麓山玩", "去月麓山里玩", [(1, 4, "岳麓山")])
    [1]
    >>> span_errors("去岳麓山玩", "去岳鹿X山玩", [(1, 4, "岳麓山")])
    [2]
    """
    errors = [0] * len(spans)
    for tag, i, _ in Levenshtein.editops(ref, hyp).as_list():
        for k, (start, end, _) in enumerate(spans):
            if (tag != "insert" and start <= i < end) or (tag == "insert" and start < i < end):
                errors[k] += 1
    return errors


def name_counts(
    refs: Sequence[str], hyps: Sequence[str], names: Sequence[str], decoys: Sequence[str] = ()
) -> dict[str, int]:
    """Occurrences of ``names``, those found exactly, errors on their characters, and false names:
    occurrences of ``names`` or ``decoys`` in a hypothesis beyond those in its reference (normalized texts)."""
    occurrences = exact = chars = errors = false = 0
    every = (*names, *decoys)
    for ref, hyp in zip(refs, hyps, strict=True):
        spans = name_spans(ref, names)
        found = {n: len([s for s in name_spans(hyp, every) if s[2] == n]) for n in every}
        wanted = {n: len([s for s in name_spans(ref, every) if s[2] == n]) for n in every}
        occurrences += len(spans)
        exact += sum(min(found[n], wanted[n]) for n in names)
        false += sum(max(0, found[n] - wanted[n]) for n in every)
        chars += sum(end - start for start, end, _ in spans)
        errors += sum(span_errors(ref, hyp, spans))
    return {
        "occurrences": occurrences,
        "exact": exact,
        "name_chars": chars,
        "name_errors": errors,
        "false": false,
    }


def conditions(names: Sequence[str]) -> dict[str, Callable[[str], tuple[str | None, str | None]]]:
    """Condition name -> (reference -> (global context, the utterance's own context))."""
    everything = SEP.join(names)
    decoy = SEP.join(DECOYS)

    def own(ref: str) -> str | None:
        return SEP.join(dict.fromkeys(n for _, _, n in name_spans(ref, names))) or None

    return {
        "no context": lambda ref: (None, None),
        "all names, global --context": lambda ref: (everything, None),
        "own names, per-utterance context": lambda ref: (None, own(ref)),
        "decoy names, global --context": lambda ref: (decoy, None),
    }


def decode(
    model, clips: ClipSet, contexts: list[tuple[str | None, str | None]], batch_size: int
) -> list[str]:
    """Hypotheses in ``clips`` order, length-sorted batches through :func:`transcribe_batch` (one
    global context per condition; per-utterance ones in each utterance's ``context`` field)."""
    glob = {c[0] for c in contexts}
    assert len(glob) == 1, "one global context per condition"
    options = DecodeOptions(context=glob.pop())
    order = sorted(range(len(clips.utts)), key=lambda i: (-len(clips.waves[i]), clips.utts[i].id))
    hyps = [""] * len(order)
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        batch = []
        for i in idx:
            own = contexts[i][1]
            extra = {k: v for k, v in clips.utts[i].extra.items() if k != "context"}
            batch.append(replace(clips.utts[i], extra={**extra, **({"context": own} if own else {})}))
        waves = [clips.waves[i] for i in idx]
        texts = transcribe_batch(model, batch, waves, options, [len(w) / 16000 for w in waves])
        for i, text in zip(idx, texts, strict=True):
            hyps[i] = text
    return hyps


def measure(clips: ClipSet, model, batch_size: int) -> dict[str, Any]:
    """Every condition on every clip of the set; rows per subset and condition, and the named clips' texts."""
    refs = [normalize(u.text) for u in clips.utts]
    hyps: dict[str, list[str]] = {}
    seconds: dict[str, float] = {}
    for cond, context_of in conditions(clips.names).items():
        start = time.perf_counter()
        hyps[cond] = decode(model, clips, [context_of(u.text) for u in clips.utts], batch_size)
        seconds[cond] = time.perf_counter() - start
        print(f"{clips.name}: {cond}: {seconds[cond]:.0f} s", flush=True)
    rows = []
    for subset, idx in clips.subsets.items():
        base = [normalize(hyps["no context"][i]) for i in idx]
        for cond, texts in hyps.items():
            norm = [normalize(texts[i]) for i in idx]
            m = score([clips.utts[i].id for i in idx], [refs[i] for i in idx], norm, n_bootstrap=0).metrics
            counts = name_counts([refs[i] for i in idx], norm, clips.names, DECOYS)
            rows.append(
                {
                    "set": clips.name,
                    "subset": subset,
                    "condition": cond,
                    "clips": len(idx),
                    "cer": m.cer,
                    "changed": sum(a != b for a, b in zip(norm, base, strict=True)),
                    **counts,
                }
            )
    named = [i for i, r in enumerate(refs) if name_spans(r, clips.names)]
    examples = [
        {"id": clips.utts[i].id, "reference": clips.utts[i].text, **{c: hyps[c][i] for c in hyps}}
        for i in named
    ]
    return {"rows": rows, "examples": examples, "seconds": seconds}


def demo_set(manifest_dir: Path) -> ClipSet:
    """The prepared demo corpus: all clips, with the test split as a subset."""
    utts = read_manifest(manifest_dir / "all.jsonl")
    test = {u.id for u in read_manifest(manifest_dir / "test.jsonl")}
    subsets = {"test": [i for i, u in enumerate(utts) if u.id in test], "all": list(range(len(utts)))}
    return ClipSet("demo", utts, [load_audio(u.audio) for u in utts], DEMO_NAMES, subsets)


COLUMNS = ["set", "clips", "condition", "CER", "name occurrences", "found exactly", "name-span CER",
           "false names", "hyps changed"]  # fmt: skip


def table_rows(rows: list[dict]) -> list[list[str]]:
    """One table row per measured row (see :data:`COLUMNS`)."""
    out = []
    for r in rows:
        span_cer = r["name_errors"] / r["name_chars"] if r["name_chars"] else float("nan")
        found = f"{r['exact']} ({r['exact'] / max(1, r['occurrences']):.0%})"
        out.append([f"{r['set']} {r['subset']}", str(r["clips"]), r["condition"], f"{r['cer']:.4f}",
                    str(r["occurrences"]), found, f"{span_cer:.4f}", str(r["false"]), str(r["changed"])])  # fmt: skip
    return out


def render(result: dict) -> str:
    """The section's table from a saved result."""
    sets = "; ".join(f"{s}: {'，'.join(names)}" for s, names in result["names"].items())
    return "\n".join(
        [
            f"Whisper `{result['model']}` ({result['backend']}, greedy, guard on, audio_context auto), CPU "
            f"{result['threads']} threads, batch {result['batch_size']}. Names looked for ({sets}); decoy "
            f"context: {'，'.join(result['decoys'])}.",
            "",
            *table(COLUMNS, table_rows(result["rows"])),
            "",
            "CER: all clips of the row (protocol normalization). Name-span CER: alignment errors on the "
            "names' reference characters over their count. False names: names or decoys in a hypothesis "
            "beyond those in its reference. Hyps changed: hypotheses that differ from the no-context ones.",
        ]
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--manifests", type=Path, default=REPO / "runs/demo/data/manifests")
    parser.add_argument("--model", type=Path, default=REPO / "models/whisper-base")
    parser.add_argument("--backend", choices=("torch", "ct2"), default="ct2", help="ct2: int8 on CPU")
    parser.add_argument("--batch-size", type=int, default=16)
    add_common_arguments(parser, (), "context-biasing")


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    torch.set_num_threads(args.threads)
    sets = [demo_set(args.manifests)]
    model = load_model(str(args.model), device="cpu", dtype="fp32")
    model.set_backend(args.backend)
    rows, examples, seconds = [], {}, {}
    for clips in sets:
        measured = measure(clips, model, args.batch_size)
        rows += measured["rows"]
        examples[clips.name] = measured["examples"]
        seconds[clips.name] = measured["seconds"]
    result = {
        "model": args.model.name,
        "backend": args.backend,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "names": {c.name: list(c.names) for c in sets},
        "decoys": list(DECOYS),
        "rows": rows,
        "examples": examples,
        "seconds": seconds,
    }
    publish(args, "context_biasing", TITLE, result, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
