"""Scoring exactly as the CS-Mage protocol defines it: CER with S/D/I, SER, WER, RTF, bootstrap CIs.

>>> from asr.metrics import cer, score
>>> cer(["长沙话！"], ["长沙化"])
0.3333333333333333
>>> score(["u1"], ["长沙话"], ["长沙话"], n_bootstrap=0).metrics.cer
0.0
"""

from asr.metrics.compare import paired_bootstrap
from asr.metrics.corpus import UTTERANCE_FIELDS, ScoreResult, cer, score
from asr.metrics.hf import hf_metric
from asr.metrics.prediction_files import read_predictions, write_score

__all__ = [
    "UTTERANCE_FIELDS",
    "ScoreResult",
    "cer",
    "hf_metric",
    "paired_bootstrap",
    "read_predictions",
    "score",
    "write_score",
]
