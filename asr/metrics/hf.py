"""CS-Mage CER for Hugging Face users: the ``evaluate`` metric module shipped in this package.

>>> HF_CER_PATH.name, (HF_CER_PATH / "hf_cer.py").is_file()
('hf_cer', True)
>>> metric = hf_metric()  # doctest: +SKIP
>>> def compute_metrics(pred):  # in a Seq2SeqTrainer, after decoding ids to text  # doctest: +SKIP
...     return metric.compute(predictions=pred_texts, references=label_texts)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from asr.errors import ASRError

# evaluate.load(str(HF_CER_PATH)) loads hf_cer/hf_cer.py (the folder and the file share a name).
HF_CER_PATH = Path(__file__).resolve().parent / "hf_cer"


def hf_metric(**load_kwargs: Any) -> Any:
    """``evaluate.load`` of the CS-Mage CER metric (an ``evaluate.EvaluationModule``); needs the hf extra."""
    try:
        import evaluate
    except ImportError:
        raise ASRError("the evaluate metric needs the hf extra: pip install 'cs-mage-asr[hf]'") from None
    return evaluate.load(str(HF_CER_PATH), **load_kwargs)
