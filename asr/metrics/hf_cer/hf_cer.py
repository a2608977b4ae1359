"""CS-Mage CER as an ``evaluate`` metric: the protocol normalization and corpus-level counting
of :func:`asr.metrics.cer` (the numbers ``asr score`` prints), for ``compute_metrics`` of a
Hugging Face Trainer.

``cer`` = total character edits (S + D + I) / total normalized reference characters. Options
``t2s`` (Traditional -> Simplified) and ``strip_tags`` (remove ``<|zh|>``-style tags) are off by
default, as in ``asr score``.

>>> from asr.metrics import hf_metric
>>> metric = hf_metric()
>>> metric.compute(predictions=["长沙化", "好咯"], references=["长沙话！", "好咯"])
{'cer': 0.2}
"""

import datasets
import evaluate

from asr.metrics.corpus import cer
from asr.text.normalize import NormOptions

_DESCRIPTION = "Character error rate with the CS-Mage normalization, counted over the whole corpus."
_CITATION = "CS-Mage (Changsha dialect corpus), https://github.com/Yaoooyu/CS-Mage"
_KWARGS_DESCRIPTION = """
Args:
    predictions: list of transcripts from the model.
    references: list of reference transcripts (raw text; normalized here).
    t2s: convert Traditional to Simplified before scoring (default False).
    strip_tags: remove <|...|> model tags before scoring (default False).
Returns:
    cer: corpus CER (sum of edits / sum of normalized reference characters).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class HfCer(evaluate.Metric):
    """CS-Mage CER (see the module docstring)."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/Yaoooyu/CS-Mage"],
        )

    def _compute(
        self, predictions: list[str], references: list[str], t2s: bool = False, strip_tags: bool = False
    ) -> dict[str, float]:
        return {"cer": cer(references, predictions, NormOptions(t2s=t2s, strip_tags=strip_tags))}
