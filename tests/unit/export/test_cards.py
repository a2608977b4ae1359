"""Per-family card templates: picked by family name; a family without one adds nothing."""

from __future__ import annotations

from asr.export import cards
from asr.models.registry import FAMILIES


def test_every_registered_family_has_a_template() -> None:
    assert set(cards.TEMPLATES) == set(FAMILIES)


def test_a_family_without_a_template_adds_no_text() -> None:
    assert cards.usage("no-such-family", "org/model", "int8") == []
    assert cards.limitations("no-such-family") == []


def test_ct2_lines_only_when_a_ct2_copy_is_exported() -> None:
    plain, with_ct2 = cards.usage("whisper", "org/m"), cards.usage("whisper", "org/m", "int8")
    assert with_ct2[: len(plain)] == plain and "A CTranslate2 copy (int8)" in "\n".join(with_ct2)
    assert cards.usage("ctc", "org/m", "int8") == cards.usage("ctc", "org/m")
