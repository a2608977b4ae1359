"""Benchmark :func:`asr.metrics.score` against a naive pure-Python edit-distance baseline.

Generates seeded synthetic utterance pairs (random CJK references of 5-40 characters,
predictions with ~10% substitutions, deletions and insertions plus punctuation), times
the full ``score()`` (normalization, alignment strings, Jieba WER, 1,000-resample
bootstrap), Jieba segmentation alone (random characters are Jieba's worst case: no
dictionary words, so its pure-Python HMM runs everywhere) and the character-only
:func:`asr.metrics.cer`, then times a textbook
O(len(ref) x len(hyp)) dynamic programme with S/D/I backtrace on a subset and
extrapolates it to the full size. Not part of the tests::

    python -m benchmarks.scoring            # 100,000 utterances, 2,000 for the baseline
    python -m benchmarks.scoring --n 20000 --baseline-n 500
    python -m benchmarks.scoring --n 2000 --baseline-n 200 --no-write   # a quick check, printed only

Saves ``runs/benchmarks/scoring.json`` and rewrites the ``scoring`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import random
import sys
import time

import numpy as np

from asr.metrics import cer, score
from asr.metrics.bootstrap import cer_ci95
from asr.metrics.words import segment
from asr.text.normalize import normalize
from benchmarks.markdown import add_publish_arguments, check_writable, publish

_PUNCT = "，。！？、"


def synthetic_pairs(n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    """``n`` seeded (id, reference, prediction) triples of random CJK text."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x4E00, 0x4E00 + 3000)]
    ids, refs, hyps = [], [], []
    for k in range(n):
        ref = [rng.choice(alphabet) for _ in range(rng.randint(5, 40))]
        hyp: list[str] = []
        for ch in ref:
            r = rng.random()
            if r < 0.04:
                hyp.append(rng.choice(alphabet))
            elif r < 0.07:
                continue
            else:
                hyp.append(ch)
            if rng.random() < 0.03:
                hyp.append(rng.choice(alphabet))
        if rng.random() < 0.5:
            ref.insert(rng.randint(0, len(ref)), rng.choice(_PUNCT))
        ids.append(f"utt{k:06d}")
        refs.append("".join(ref))
        hyps.append("".join(hyp))
    return ids, refs, hyps


def naive_counts(ref: str, hyp: str) -> tuple[int, int, int]:
    """(S, D, I) by full DP table and backtrace, pure Python (the baseline)."""
    n, m = len(ref), len(hyp)
    dp = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dp[i][0] = i
    for j in range(m + 1):
        dp[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            dp[i][j] = min(dp[i - 1][j] + 1, dp[i][j - 1] + 1, dp[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    s = d = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and dp[i][j] == dp[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            s += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i > 0 and dp[i][j] == dp[i - 1][j] + 1:
            d += 1
            i -= 1
        else:
            ins += 1
            j -= 1
    return s, d, ins


def naive_cer(refs: list[str], hyps: list[str]) -> float:
    errors = chars = 0
    for ref, hyp in zip(refs, hyps, strict=True):
        ref_norm = normalize(ref)
        errors += sum(naive_counts(ref_norm, normalize(hyp)))
        chars += len(ref_norm)
    return errors / chars


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--n", type=int, default=100_000, help="synthetic utterances")
    parser.add_argument("--baseline-n", type=int, default=2_000, help="utterances timed with the naive DP")
    parser.add_argument("--seed", type=int, default=0)
    add_publish_arguments(parser, "scoring")


TITLE = "Scoring"


def render(result: dict) -> str:
    """The section's table from a saved result."""
    r = result
    return "\n".join(
        [
            f"{r['n_utterances']:,} synthetic utterances ({r['ref_chars']:,} reference characters).",
            "",
            "| part | time | utterances/s |",
            "|---|---|---|",
            f"| `cer()` (rapidfuzz edit operations, exact) | {r['cer_only_seconds']:.1f} s | {r['cer_only_utt_per_s']:,} |",
            f"| naive pure-Python DP (baseline, extrapolated from {r['naive_subset']:,}) | "
            f"{r['naive_dp_seconds_extrapolated']:.0f} s | {r['naive_dp_utt_per_s']:,} |",
            f"| 1,000-resample bootstrap CI | {r['bootstrap_1000_seconds']:.1f} s | |",
            f"| Jieba segmentation for WER | {r['jieba_segmentation_seconds']:.0f} s | |",
            f"| full `score()` (CER, S/D/I, SER, WER, CI) | {r['score_seconds']:.0f} s | {r['score_utt_per_s']:,} |",
            "",
            f"Character scoring is {r['speedup_cer_only_vs_naive']:.0f}x as fast as the naive DP; full scoring "
            f"(with WER and the CI) {r['speedup_full_score_vs_naive']:.2f}x.",
        ]
    )


def run(args: argparse.Namespace) -> int:
    check_writable(args)
    ids, refs, hyps = synthetic_pairs(args.n, args.seed)
    score(ids[:10], refs[:10], hyps[:10], n_bootstrap=0)  # load Jieba outside the timing

    t0 = time.perf_counter()
    result = score(ids, refs, hyps, n_bootstrap=1000, seed=0)
    t_score = time.perf_counter() - t0

    t0 = time.perf_counter()
    fast_cer = cer(refs, hyps)
    t_cer = time.perf_counter() - t0

    errors = np.array([u["errors"] for u in result.utterances])
    ref_chars = np.array([u["ref_chars"] for u in result.utterances])
    t0 = time.perf_counter()
    cer_ci95(errors, ref_chars, 1000, 0)
    t_boot = time.perf_counter() - t0

    segment.cache_clear()
    t0 = time.perf_counter()
    for text in (*refs, *hyps):
        segment(normalize(text))
    t_jieba = time.perf_counter() - t0

    k = min(args.baseline_n, args.n)
    t0 = time.perf_counter()
    base_cer = naive_cer(refs[:k], hyps[:k])
    t_base = (time.perf_counter() - t0) * args.n / k

    sub_cer = cer(refs[:k], hyps[:k])
    if abs(sub_cer - base_cer) > 1e-12:
        print(f"mismatch: rapidfuzz CER {sub_cer} != naive CER {base_cer} on the subset", file=sys.stderr)
        return 1
    report = {
        "n_utterances": args.n,
        "ref_chars": result.metrics.ref_chars,
        "cer": round(result.metrics.cer, 6),
        "cer_ci95": [round(x, 6) for x in result.metrics.cer_ci95],
        "score_seconds": round(t_score, 2),
        "score_utt_per_s": round(args.n / t_score),
        "bootstrap_1000_seconds": round(t_boot, 2),
        "jieba_segmentation_seconds": round(t_jieba, 2),
        "cer_only_seconds": round(t_cer, 2),
        "cer_only_utt_per_s": round(args.n / t_cer),
        "naive_dp_seconds_extrapolated": round(t_base, 2),
        "naive_dp_utt_per_s": round(args.n / t_base),
        "naive_subset": k,
        "speedup_cer_only_vs_naive": round(t_base / t_cer, 1),
        "speedup_full_score_vs_naive": round(t_base / t_score, 2),
    }
    assert abs(fast_cer - result.metrics.cer) < 1e-12
    publish(args, "scoring", TITLE, report, render)
    return 0


if __name__ == "__main__":
    from asr.cli import standalone

    sys.exit(standalone(__name__))
