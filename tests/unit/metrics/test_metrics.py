"""Metric values against hand-computed cases, bootstrap behaviour, prediction file reading."""

import json
import random
from pathlib import Path

import jiwer
import pytest

from asr.errors import DataError
from asr.metrics import ScoreResult, cer, paired_bootstrap, read_predictions, score, write_score
from asr.metrics.alignment import align, edit_counts
from asr.metrics.corpus import UTTERANCE_FIELDS
from asr.run_records import EvalRecord
from asr.text.normalize import NormOptions

CS_MAGE = Path(__file__).resolve().parents[3].parent / "shared" / "cs-mage"
needs_cs_mage = pytest.mark.skipif(not CS_MAGE.is_dir(), reason=f"CS-Mage metadata not at {CS_MAGE}")

# (reference, prediction, S, D, I) with a unique minimal alignment, counted by hand.
HAND_CASES = [
    ("我是长沙人", "我事长沙人啊", 1, 0, 1),  # 是->事, +啊
    ("长沙话", "长沙", 0, 1, 0),  # -话
    ("好咯", "好咯好咯", 0, 0, 2),  # +好咯
    ("今天天气很好", "今天很好", 0, 2, 0),  # -天气
    ("ＡＢＣＤ", "a x c d!", 1, 0, 0),  # normalized: abcd vs axcd
    ("谢谢大家", "谢谢大家。", 0, 0, 0),  # punctuation only
]


def naive_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize(("ref", "hyp", "s", "d", "i"), HAND_CASES)
def test_hand_cases_per_utterance(ref, hyp, s, d, i):
    utt = score(["u"], [ref], [hyp], n_bootstrap=0).utterances[0]
    assert (utt["sub"], utt["del"], utt["ins"]) == (s, d, i)
    assert utt["errors"] == s + d + i
    assert utt["cer"] == pytest.approx((s + d + i) / utt["ref_chars"])


def test_hand_cases_corpus_totals():
    refs = [c[0] for c in HAND_CASES]
    hyps = [c[1] for c in HAND_CASES]
    m = score([str(k) for k in range(len(refs))], refs, hyps, n_bootstrap=0).metrics
    # ref chars 5 + 3 + 2 + 6 + 4 + 4; errors 2 + 1 + 2 + 2 + 1 + 0
    assert (m.substitutions, m.deletions, m.insertions) == (2, 3, 3)
    assert m.ref_chars == 24
    assert m.cer == pytest.approx(8 / 24)
    assert m.ser == pytest.approx(5 / 6)
    assert m.n_utterances == 6
    assert cer(refs, hyps) == pytest.approx(8 / 24)


def test_alignment_string():
    assert align("我是长沙人", "我事长沙人啊").ops == "S1:是>事 I5:啊"
    assert align("长沙话", "长沙").ops == "D2:话"
    assert align("长沙", "长沙").ops == ""
    assert align("12", "13").ops == "S1:2>3"


def test_word_edit_counts_on_lists():
    assert edit_counts(["长沙", "人"], ["长沙"]) == (0, 1, 0)
    assert edit_counts([], ["啊"]) == (0, 0, 1)


def test_counts_match_naive_dp_and_jiwer():
    rng = random.Random(3)
    alphabet = "长沙话是我人好咯的了"
    refs, hyps = [], []
    for _ in range(60):
        refs.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))))
        hyps.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))))
    result = score([str(k) for k in range(60)], refs, hyps, n_bootstrap=0)
    for utt, ref, hyp in zip(result.utterances, refs, hyps, strict=True):
        assert utt["errors"] == naive_distance(ref, hyp)
        assert len(ref) - utt["del"] + utt["ins"] == len(hyp)
    out = jiwer.process_characters(refs, hyps)
    total = out.substitutions + out.deletions + out.insertions
    assert result.metrics.errors == total
    assert result.metrics.cer == pytest.approx(out.cer)


def test_empty_prediction_counts_deletions():
    utt = score(["u"], ["长沙话"], [""], n_bootstrap=0).utterances[0]
    assert (utt["sub"], utt["del"], utt["ins"], utt["cer"]) == (0, 3, 0, 1.0)
    assert score(["u"], ["长沙话"], [None], n_bootstrap=0).metrics.cer == 1.0


def test_empty_reference_adds_insertions_and_no_characters():
    r = score(["a", "b"], ["。", "长沙"], ["啊啊", "长沙"], n_bootstrap=0)
    assert r.metrics.ref_chars == 2
    assert r.metrics.insertions == 2
    assert r.metrics.cer == 1.0
    assert r.metrics.n_empty_references == 1
    assert r.utterances[0]["cer"] is None
    assert score(["a", "b"], ["", "长沙"], ["", "长沙"], n_bootstrap=0).utterances[0]["cer"] == 0.0


def test_all_empty_references_is_an_error():
    with pytest.raises(DataError, match="empty after normalization"):
        score(["a"], ["！"], ["啊"])
    with pytest.raises(DataError, match="empty after normalization"):
        cer([""], ["啊"])


def test_bad_inputs():
    with pytest.raises(DataError, match="differ in length"):
        score(["a", "b"], ["长沙"], ["长沙"])
    with pytest.raises(DataError, match="duplicate"):
        score(["a", "a"], ["长沙", "好"], ["长沙", "好"])
    with pytest.raises(DataError, match="utterance 'b': prediction must be text, got float nan"):
        score(["a", "b"], ["长沙", "好"], ["长沙", float("nan")])
    with pytest.raises(DataError, match="no utterances"):
        score([], [], [])


def test_ser_counts_utterances_with_any_error():
    m = score(
        ["a", "b", "c", "d"], ["长沙", "好咯", "是的", "我"], ["长沙", "好", "是的啊", "我"], n_bootstrap=0
    ).metrics
    assert m.ser == 0.5


def test_wer_uses_jieba_words():
    # Jieba: 我/觉得/这/确确实实/也/是/一种/湖南/特色/吧 (10 words); the prediction drops 吧
    m = score(
        ["a"], ["我觉得这确确实实也是一种湖南特色吧"], ["我觉得这确确实实也是一种湖南特色"], n_bootstrap=0
    ).metrics
    assert (m.word_errors, m.ref_words) == (1, 10)
    assert m.wer == pytest.approx(0.1)
    assert m.cer == pytest.approx(1 / 17)


def test_rtf():
    kw = {"n_bootstrap": 0}
    m = score(
        ["a", "b"], ["长沙", "好"], ["长沙", "好"], durations=[2.0, 3.0], decode_seconds=[0.5, 0.5], **kw
    )
    assert m.metrics.rtf == pytest.approx(0.2)
    assert score(["a"], ["长沙"], ["长沙"], durations=[2.0], **kw).metrics.rtf is None
    assert score(["a"], ["长沙"], ["长沙"], durations=[None], decode_seconds=[1.0], **kw).metrics.rtf is None


def test_normalization_options_apply_and_are_recorded():
    r = score(
        ["a"], ["長沙話"], ["<|zh|>长沙话"], options=NormOptions(t2s=True, strip_tags=True), n_bootstrap=0
    )
    assert r.metrics.cer == 0.0
    assert r.metrics.normalization == {"t2s": True, "strip_tags": True}
    assert score(["a"], ["長沙話"], ["长沙话"], n_bootstrap=0).metrics.cer == pytest.approx(2 / 3)  # 長, 話


ALPHABET = [chr(0x4E00 + k) for k in range(300)]


def _corpus(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs = ["".join(rng.choice(ALPHABET) for _ in range(rng.randint(3, 15))) for _ in range(n)]
    return [f"u{k}" for k in range(n)], refs


def _corrupt(refs: list[str], error_rate: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(ALPHABET) if rng.random() < error_rate else c for c in ref) for ref in refs]


def _noisy_corpus(n: int, error_rate: float, seed: int):
    ids, refs = _corpus(n, seed)
    return ids, refs, _corrupt(refs, error_rate, seed)


def test_ci_contains_point_estimate_and_is_deterministic():
    ids, refs, hyps = _noisy_corpus(200, 0.1, 1)
    m = score(ids, refs, hyps, n_bootstrap=500, seed=7).metrics
    lo, hi = m.cer_ci95
    assert lo < m.cer < hi
    assert hi - lo < 0.05
    assert score(ids, refs, hyps, n_bootstrap=500, seed=7).metrics.cer_ci95 == [lo, hi]
    assert score(ids, refs, hyps, n_bootstrap=500, seed=8).metrics.cer_ci95 != [lo, hi]
    assert score(ids, refs, hyps, n_bootstrap=0).metrics.cer_ci95 is None


def _result(ids, refs, hyps, n_bootstrap=0) -> ScoreResult:
    return score(ids, refs, hyps, n_bootstrap=n_bootstrap)


def test_paired_bootstrap_sign():
    ids, refs = _corpus(150, 2)
    worse, better = _corrupt(refs, 0.2, 2), _corrupt(refs, 0.02, 3)
    a, b = _result(ids, refs, worse), _result(ids, refs, better)
    res = paired_bootstrap(a, b, n_bootstrap=500, seed=0)
    assert res["delta"] == pytest.approx(res["cer_b"] - res["cer_a"])
    assert res["delta"] < 0
    assert res["delta_ci95"][1] < 0
    assert res["p_delta_ge_0"] == 0.0
    flipped = paired_bootstrap(b, a, n_bootstrap=500, seed=0)
    assert flipped["delta"] == pytest.approx(-res["delta"])
    assert flipped["p_delta_ge_0"] == 1.0
    same = paired_bootstrap(a, a, n_bootstrap=100)
    assert (same["delta"], same["delta_ci95"], same["p_delta_ge_0"]) == (0.0, [0.0, 0.0], 1.0)


def test_paired_bootstrap_matches_ids_not_order():
    ids, refs, hyps = _noisy_corpus(30, 0.1, 4)
    a = _result(ids, refs, hyps)
    b = _result(ids[::-1], refs[::-1], hyps[::-1])
    assert paired_bootstrap(a, b, n_bootstrap=50)["delta"] == 0.0


def test_paired_bootstrap_rejects_different_ids_and_references():
    ids, refs, hyps = _noisy_corpus(10, 0.1, 5)
    a = _result(ids, refs, hyps)
    b = _result([*ids[:8], "x1", "x2"], refs, hyps)
    with pytest.raises(DataError, match=r"2 ids only in one.txt \(e.g. u8, u9\); 2 ids only in two.txt"):
        paired_bootstrap(a, b, labels=("one.txt", "two.txt"))
    c = _result(ids, ["长沙", *refs[1:]], hyps)
    with pytest.raises(DataError, match="1 utterances have different normalized references"):
        paired_bootstrap(a, c)


# -- prediction files ---------------------------------------------------------------------------


def test_read_csv_with_authors_column_names(tmp_path):
    path = tmp_path / "preds.csv"
    path.write_text(
        'sample_id,reference_text,prediction,model\nvideo_1_1,长沙话，好,长沙化,x\nvideo_1_2,"好,咯",,x\n',
        encoding="utf-8",
    )
    rows = read_predictions(path)
    assert rows == [
        {
            "id": "video_1_1",
            "reference": "长沙话，好",
            "prediction": "长沙化",
            "duration": None,
            "decode_seconds": None,
        },
        {"id": "video_1_2", "reference": "好,咯", "prediction": "", "duration": None, "decode_seconds": None},
    ]


def test_read_jsonl_with_timings(tmp_path):
    path = tmp_path / "preds.jsonl"
    lines = [
        {"id": "a", "reference": "长沙", "prediction": "长沙", "duration": 2.5, "decode_seconds": 0.5},
        {"id": 7, "reference": "好", "prediction": None, "duration": "1.5", "decode_seconds": 0.25},
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n", encoding="utf-8")
    rows = read_predictions(path)
    assert [r["id"] for r in rows] == ["a", "7"]
    assert rows[1]["prediction"] == ""
    assert (rows[1]["duration"], rows[1]["decode_seconds"]) == (1.5, 0.25)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "p.csv",
            "id,prediction\na,长沙\n",
            r"p.csv \(header\): missing column 'reference' or 'reference_text'",
        ),
        (
            "p.csv",
            "id,reference,prediction\na,长沙,长沙\na,好,好\n",
            r"p.csv: 1 duplicate ids, e.g. a \(lines 2 and 3\)",
        ),
        ("p.csv", "id,reference,prediction\na,长沙\n", r"p.csv, line 2: 2 fields, but the header has 3"),
        (
            "p.csv",
            "id,reference,prediction,duration\na,长沙,长沙,abc\n",
            r"p.csv, line 2: 'duration' is not a number",
        ),
        ("p.csv", "id,reference,prediction\n", r"p.csv: no predictions"),
        (
            "p.jsonl",
            '{"id": "a", "reference": "x", "prediction": "y"}\n{"id": "b", \n',
            r"p.jsonl:2: invalid JSON",
        ),
        ("p.jsonl", '{"id": "a", "reference": "x"}\n', r"p.jsonl, line 1: missing column 'prediction'"),
        ("p.jsonl", '["a", "b"]\n', r"p.jsonl:1: expected a JSON object"),
        (
            "p.jsonl",
            '{"id": "a", "reference": 3, "prediction": "y"}\n',
            r"line 1: 'reference' must be a string",
        ),
    ],
)
def test_bad_prediction_files_name_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_predictions(path)


def test_missing_and_non_utf8_files(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: prediction file not found"):
        read_predictions(tmp_path / "nope.csv")
    path = tmp_path / "gbk.csv"
    path.write_bytes("id,reference,prediction\na,长沙,长沙\n".encode("gbk"))
    with pytest.raises(DataError, match=r"gbk.csv: not UTF-8"):
        read_predictions(path)


def test_write_score_files(tmp_path):
    r = score(["a", "b"], ["长沙话", "。"], ["长沙", "啊"], n_bootstrap=20)
    write_score(r, tmp_path / "out" / "metrics.json", tmp_path / "out" / "per_utt.csv")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics == EvalRecord(metrics=r.metrics).to_json()
    assert EvalRecord.load(tmp_path / "out" / "metrics.json").metrics == r.metrics
    text = (tmp_path / "out" / "per_utt.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(UTTERANCE_FIELDS)
    # Jieba splits 长沙话 into 长沙/话: 2 reference words, 1 word error
    assert "a,长沙话,长沙,长沙话,长沙,3,0,1,0,1,0.3333333333333333,2,1,D2:话" in text
    assert "b,。,啊,,啊,0,0,0,1,1,,0,1,I0:啊" in text


# -- official CS-Mage transcripts -----------------------------------------------------------------


def _read_id_text(path: Path) -> dict[str, str]:
    pairs = (line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return {p[0]: p[1] if len(p) > 1 else "" for p in pairs}


@needs_cs_mage
def test_official_punctuated_vs_plain_transcripts_score_zero():
    punct = _read_id_text(CS_MAGE / "transcripts_1085_punct.txt")
    plain = _read_id_text(CS_MAGE / "transcripts_1085_plain.txt")
    assert len(punct) == len(plain) == 1085
    ids = sorted(punct)
    m = score(ids, [punct[i] for i in ids], [plain[i] for i in ids], n_bootstrap=100).metrics
    assert (m.cer, m.errors, m.ser, m.wer, m.cer_ci95) == (0.0, 0, 0.0, 0.0, [0.0, 0.0])
    assert m.n_utterances == 1085
    assert m.ref_chars > 15000


@needs_cs_mage
def test_official_transcripts_self_vs_self_score_zero():
    punct = _read_id_text(CS_MAGE / "transcripts_1085_punct.txt")
    texts = list(punct.values())
    assert cer(texts, texts) == 0.0
