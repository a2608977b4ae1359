"""Cleaning of raw funasr outputs: SenseVoice rich tags and Paraformer's spaced characters."""

from __future__ import annotations

import pytest

from asr.errors import ConfigError
from asr.models.funasr.model import FunASRModel, clean_funasr_text
from asr.models.funasr.sensevoice import sensevoice_language
from asr.text.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<|zh|><|NEUTRAL|><|Speech|><|woitn|>今天恰么子饭啰", "今天恰么子饭啰"),
        ("<|zh|><|NEUTRAL|><|Speech|><|withitn|>今天恰么子饭啰？", "今天恰么子饭啰？"),
        ("<|yue|><|HAPPY|><|BGM|><|woitn|>呢几个字都表达唔到我想讲嘅意思", "呢几个字都表达唔到我想讲嘅意思"),
        ("<|en|><|EMO_UNKNOWN|><|Speech|><|withitn|>Hello, world.", "Hello, world."),
        ("<|nospeech|><|Event_UNK|>", ""),
        ("<|zh|><|SAD|><|Laughter|><|woitn|>", ""),
        # funasr joins VAD segments of one file, each with its own tag prefix
        ("<|zh|><|NEUTRAL|><|Speech|><|woitn|>你好<|zh|><|ANGRY|><|Speech|><|woitn|>再见", "你好再见"),
        # Paraformer (timestamp path) and SeACo print characters separated by spaces; latin words keep theirs
        ("小 伢 子 莫 跑 咯", "小伢子莫跑咯"),
        ("我 用 iphone 打 电 话", "我用 iphone 打电话"),
        ("  长 沙\t话  ", "长沙话"),
        ("长沙话", "长沙话"),
    ],
)
def test_clean_funasr_text(raw, clean):
    assert clean_funasr_text(raw) == clean
    assert FunASRModel.clean_prediction(object.__new__(FunASRModel), raw) == clean


def test_cleaned_sensevoice_output_scores_like_the_reference():
    raw = "<|zh|><|NEUTRAL|><|Speech|><|withitn|>冇得饭恰哒，点外卖噻。"
    assert normalize(clean_funasr_text(raw)) == normalize("冇得饭恰哒，点外卖噻。") == "冇得饭恰哒点外卖噻"
    # without cleaning, the tag letters would survive normalization as text
    assert normalize(raw).startswith("zhneutralspeechwithitn")


@pytest.mark.parametrize(("language", "tag"), [("zh", "zh"), ("ZH", "zh"), ("yue", "yue"), (None, "auto")])
def testsensevoice_language(language, tag):
    assert sensevoice_language(language) == tag


def test_sensevoice_rejects_unknown_language():
    with pytest.raises(ConfigError, match="not one of"):
        sensevoice_language("cmn")
