"""``asr score``: score a prediction file, or compare two with a paired bootstrap.

Examples::

    asr score --predictions runs/whisper/predictions.jsonl
    asr score --predictions preds.csv --t2s --strip-tags --out results/metrics.json
    asr score --compare runs/a/predictions.jsonl runs/b/predictions.jsonl --out compare.json

Scoring prints a one-line JSON summary (cer, sub, del, ins, ser, wer, ci) and writes
``metrics.json`` (default: in the prediction file's folder) and ``per_utterance.csv``
(default: beside the metrics file). Comparing prints ``cer_a``, ``cer_b``, ``delta`` (B - A),
``delta_ci95`` and ``p_delta_ge_0`` (see :mod:`asr.metrics.compare`), and writes them with
both systems' metrics when ``--out`` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from asr.arguments import non_negative_int
from asr.errors import ConfigError
from asr.io import check_output_file, write_json
from asr.metrics import ScoreResult, paired_bootstrap, read_predictions, score, write_score
from asr.run_dir import METRICS_FILE, PER_UTTERANCE_FILE
from asr.run_records import CorpusMetrics
from asr.text.normalize import NormOptions

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", type=Path, metavar="FILE", help="CSV or JSONL prediction file")
    source.add_argument(
        "--compare", type=Path, nargs=2, metavar=("A", "B"), help="paired bootstrap of two prediction files"
    )
    parser.add_argument(
        "--out", type=Path, help="metrics JSON (default: metrics.json beside the predictions)"
    )
    parser.add_argument(
        "--per-utterance",
        type=Path,
        metavar="FILE",
        help="per-utterance CSV (default: per_utterance.csv beside --out)",
    )
    parser.add_argument("--t2s", action="store_true", help="convert Traditional to Simplified before scoring")
    parser.add_argument("--strip-tags", action="store_true", help="remove <|...|> model tags before scoring")
    parser.add_argument(
        "--bootstrap",
        type=non_negative_int,
        default=1000,
        metavar="N",
        help="bootstrap resamples (0: no CI)",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0, help="bootstrap seed")


def score_file(path: Path, options: NormOptions, n_bootstrap: int, seed: int) -> ScoreResult:
    """Read a prediction file and score it; RTF only when every row has both timings."""
    rows = read_predictions(path)
    durations = [r["duration"] for r in rows]
    decode = [r["decode_seconds"] for r in rows]
    return score(
        [r["id"] for r in rows],
        [r["reference"] for r in rows],
        [r["prediction"] for r in rows],
        options=options,
        durations=None if None in durations else durations,
        decode_seconds=None if None in decode else decode,
        n_bootstrap=n_bootstrap,
        seed=seed,
    )


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, list):
        return [_round(v) for v in value]
    return value


def _summary(metrics: CorpusMetrics) -> dict[str, Any]:
    keys = {
        "cer": "cer",
        "sub": "substitutions",
        "del": "deletions",
        "ins": "insertions",
        "ser": "ser",
        "wer": "wer",
        "ci": "cer_ci95",
        "n": "n_utterances",
    }
    return {short: _round(getattr(metrics, key)) for short, key in keys.items()}


def _compare(args: argparse.Namespace, options: NormOptions) -> int:
    path_a, path_b = args.compare
    if args.out:
        check_output_file(args.out)
    a = score_file(path_a, options, args.bootstrap, args.seed)
    b = score_file(path_b, options, args.bootstrap, args.seed)
    result = paired_bootstrap(a, b, args.bootstrap, args.seed, labels=(str(path_a), str(path_b)))
    print(json.dumps({k: _round(v) for k, v in result.items()}, ensure_ascii=False))
    if args.out:
        report = {
            **result,
            "a": str(path_a),
            "b": str(path_b),
            "metrics_a": a.metrics.to_json(),
            "metrics_b": b.metrics.to_json(),
        }
        write_json(args.out, report)
        log.info("wrote %s", args.out)
    return 0


def run(args: argparse.Namespace) -> int:
    options = NormOptions(t2s=args.t2s, strip_tags=args.strip_tags)
    if args.compare:
        if args.per_utterance:
            raise ConfigError("--per-utterance applies to --predictions, not to --compare")
        return _compare(args, options)
    metrics_path = check_output_file(args.out or args.predictions.parent / METRICS_FILE)
    per_utt_path = check_output_file(
        args.per_utterance or metrics_path.parent / PER_UTTERANCE_FILE, "--per-utterance"
    )
    result = score_file(args.predictions, options, args.bootstrap, args.seed)
    write_score(result, metrics_path, per_utt_path)
    log.info("wrote %s and %s", metrics_path, per_utt_path)
    print(json.dumps(_summary(result.metrics), ensure_ascii=False))
    return 0
