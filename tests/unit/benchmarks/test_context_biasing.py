"""benchmarks/context_biasing.py: where names are, the errors on their characters, and the conditions."""

from __future__ import annotations

from asr.data.demo_sentences import DEMO_SENTENCES
from asr.text.normalize import normalize
from benchmarks.context_biasing import DECOYS, DEMO_NAMES, conditions, name_counts, name_spans, span_errors


def test_demo_sentences_hold_each_name_and_no_decoy() -> None:
    found = [n for _, _, n in (s for text in DEMO_SENTENCES for s in name_spans(normalize(text), DEMO_NAMES))]
    assert sorted(found) == sorted(DEMO_NAMES)  # each of the six names in exactly one sentence
    assert not any(d in text for d in DECOYS for text in DEMO_SENTENCES)


def test_span_errors_count_substitutions_deletions_and_inner_insertions() -> None:
    spans = name_spans("周末去岳麓山和长沙", DEMO_NAMES)
    assert spans == [(3, 6, "岳麓山"), (7, 9, "长沙")]
    assert span_errors("周末去岳麓山和长沙", "周末去岳麓山和长沙", spans) == [0, 0]
    assert span_errors("周末去岳麓山和长沙", "周末去月麓X山和", spans) == [
        2,
        2,
    ]  # 1 sub + 1 inside; 2 deleted
    assert span_errors("周末去岳麓山和长沙", "周末去X岳麓山Y和长沙", spans) == [
        0,
        0,
    ]  # insertions at the edges


def test_name_counts() -> None:
    refs = ["周末去岳麓山和长沙", "今天恰么子饭"]
    hyps = ["周末去岳鹿山和长沙", "今天去长沙恰饭"]
    counts = name_counts(refs, hyps, DEMO_NAMES)
    assert counts == {"occurrences": 2, "exact": 1, "name_chars": 5, "name_errors": 1, "false": 1}
    with_decoy = name_counts(refs, [hyps[0], "今天去西湖恰饭"], DEMO_NAMES, DECOYS)
    assert (
        with_decoy["false"] == 1 and name_counts(refs, [hyps[0], "今天去西湖恰饭"], DEMO_NAMES)["false"] == 0
    )


def test_conditions_give_global_and_own_contexts() -> None:
    made = {name: f("晚上去坡子街恰夜宵") for name, f in conditions(DEMO_NAMES).items()}
    assert made == {
        "no context": (None, None),
        "all names, global --context": ("长沙，岳麓山，橘子洲，坡子街，五一广场，茶颜悦色", None),
        "own names, per-utterance context": (None, "坡子街"),
        "decoy names, global --context": ("杭州，西湖，鼓浪屿，宽窄巷子，夫子庙，大雁塔", None),
    }
    assert conditions(DEMO_NAMES)["own names, per-utterance context"]("今天恰么子饭") == (None, None)
