"""The model card's words about the training data, from the corpus the run actually used.

A run whose prepared data is CS-Mage (or whose records name no data) is described as CS-Mage,
the latter saying that the corpus was not recorded; any other corpus, the bundled demo
included, is named as what it is, with its split sizes, and the card says it is not CS-Mage.
"""

from __future__ import annotations

from asr.data.corpus_info import CorpusInfo

CSMAGE_TERMS = (
    "CS-Mage is distributed by its authors for **non-commercial research and education only**. "
    "This model was trained on it and inherits those terms: do not use it commercially. "
    "The corpus itself is not redistributed here; obtain it from its authors "
    "(https://github.com/Yaoooyu/CS-Mage)."
)
DEMO_TERMS = (
    "The demo corpus ships with cs-mage-asr (`tools/make_demo.py`): sentences written for the project, "
    "spoken by espeak-ng voices. Nothing in it comes from CS-Mage."
)
V2_PROTOCOL = "CS-Mage v2 split (760/160/165)"


def uses_csmage(corpus: CorpusInfo) -> bool:
    """CS-Mage, or no record saying otherwise (the card then says the corpus was not recorded)."""
    return corpus.is_csmage or not corpus.known


def trained_on(corpus: CorpusInfo) -> str:
    """The end of the card's first sentence: "fine-tuned from X on ..."."""
    if uses_csmage(corpus):
        return "the CS-Mage corpus"
    return f"the {corpus.label()}"


def data_terms(corpus: CorpusInfo) -> str:
    if uses_csmage(corpus):
        return CSMAGE_TERMS
    if corpus.kind == "demo":
        return DEMO_TERMS
    return f"The training data ({corpus.name}) is not CS-Mage; its own terms apply."


def training_data_section(corpus: CorpusInfo) -> list[str]:
    """The "Training data" section's paragraphs."""
    if corpus.is_csmage:
        text = (
            f"CS-Mage (Changsha-dialect clips, 16 kHz mono, Chinese-character transcripts), as prepared "
            f"for this run: {corpus.splits_text()}, {corpus.protocol_text()}."
        )
    elif not corpus.known:
        text = (
            "CS-Mage: 1,085 Changsha-dialect clips (16 kHz mono) with Chinese-character transcripts. "
            f"The run's records do not name the prepared data, so the {V2_PROTOCOL} protocol is assumed "
            "unless the results section says otherwise."
        )
    else:
        what = (
            "synthetic espeak-ng speech of sentences written in the style of Changsha-dialect "
            "transcripts; robot speech, not Changsha dialect"
            if corpus.kind == "demo"
            else f"a {corpus.layout or 'prepared'} corpus"
        )
        text = (
            f"**Not CS-Mage.** This model was trained on the {corpus.name} ({what}): "
            f"{corpus.splits_text()}, {corpus.protocol_text()}. Its error rates say that the "
            "pipeline learns, not how well Changsha dialect is recognised."
        )
    return [text, "", data_terms(corpus), ""]


def data_limitation(corpus: CorpusInfo) -> str:
    """The first bullet of the card's limitations."""
    if uses_csmage(corpus):
        return (
            "- Trained on one small corpus of Changsha-dialect speech (CS-Mage, 1,085 short clips in all): "
            "expect much higher error rates on other Xiang varieties, other dialects, noisy audio, or "
            "topics the clips do not cover."
        )
    return (
        f"- Trained on the {corpus.label()} ({corpus.splits_text()}), not on CS-Mage: "
        "do not use it for real Changsha-dialect speech."
    )


def small_test_split(corpus: CorpusInfo) -> str:
    if uses_csmage(corpus):
        return (
            "- The test split is small (165 clips in the v2 protocol), hence the wide confidence intervals."
        )
    test = corpus.counts.get("test")
    return f"- The test split is small ({test if test is not None else 'an unrecorded number of'} clips), hence the wide confidence intervals."
