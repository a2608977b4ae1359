"""CS-Mage protocol normalization: NFKC, ASCII lowercase, keep U+3400-4DBF, U+4E00-9FFF, 0-9, a-z."""

import pytest

from asr.text.normalize import NormOptions, normalize, strip_model_tags


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ＡＢＣ１２３", "abc123"),  # full-width letters and digits fold to ASCII (NFKC)
        ("Ｈｅｌｌｏ\u3000世界", "hello世界"),  # ideographic space dropped
        ("长沙😀话🎉", "长沙话"),  # emoji dropped
        ("，。！？、“”《》：；", ""),  # full-width punctuation dropped
        (',.!?"():;-', ""),  # ASCII punctuation dropped
        ("HeLLo World", "helloworld"),  # mixed case lowered, spaces dropped
        ("2024年3月", "2024年3月"),  # digits kept
        ("①²", "12"),  # NFKC turns circled/superscript digits into digits
        ("café", "caf"),  # non-ASCII Latin letters are outside the kept ranges
        ("\u200b长\u00a0沙\t\n", "长沙"),  # zero-width and other whitespace dropped
        ("", ""),
        (None, ""),
    ],
)
def test_protocol_normalization(text, expected):
    assert normalize(text) == expected


def test_model_tags_kept_as_letters_without_strip_tags():
    assert normalize("<|zh|><|HAPPY|>好咯") == "zhhappy好咯"


def test_model_tags_removed_with_strip_tags():
    assert normalize("<|zh|><|HAPPY|><|Speech|>好咯", NormOptions(strip_tags=True)) == "好咯"
    assert strip_model_tags("<|en|>ok<|notimestamps|>") == "ok"


def test_strip_tags_leaves_other_angle_brackets_to_normalization():
    assert normalize("<b>长沙</b>", NormOptions(strip_tags=True)) == "b长沙b"


def test_traditional_kept_without_t2s():
    assert normalize("長沙話，這個") == "長沙話這個"


def test_traditional_converted_with_t2s():
    assert normalize("長沙話，這個", NormOptions(t2s=True)) == "长沙话这个"


def test_extension_a_block_kept_with_bounds():
    # U+3400 and U+4DBF (Extension A ends), U+4E00 and U+9FFF (unified block ends)
    assert normalize("\u3400\u4dbf\u4e00\u9fff") == "\u3400\u4dbf\u4e00\u9fff"


def test_chars_outside_ranges_dropped():
    # Extension B (U+20000), Yijing hexagram (U+4DC0, between the two ranges),
    # ideographic zero (U+3007), Yi syllable (U+A000), a compatibility ideograph
    # without decomposition (U+FA0E): all outside the kept ranges.
    assert normalize("\U00020000\u4dc0\u3007\ua000\ufa0e") == ""


def test_compatibility_ideographs_kept_after_nfkc_mapping():
    # NFKC maps compatibility ideographs and Kangxi radicals onto unified ideographs,
    # which then fall inside U+4E00-9FFF and are kept.
    assert normalize("\uf900") == "\u8c48"
    assert normalize("\U0002f800") == "\u4e3d"
    assert normalize("\u2f00") == "\u4e00"


def test_options_default_to_protocol():
    assert NormOptions().as_dict() == {"t2s": False, "strip_tags": False}
    assert normalize("長沙<|zh|>", None) == normalize("長沙<|zh|>", NormOptions())
