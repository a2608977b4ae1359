"""``asr segment --apply-draft`` on hand-edited ``draft.tsv`` files (issue 21).

Each edit a person makes in a spreadsheet or text editor ends in one ``error:`` line naming the
file, the line and the problem, or is read correctly (Excel's UTF-8 with a byte-order mark).
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.csmage import AUDIO_FOLDER
from asr.longform.corpus import DRAFT, write_corpus
from tests.conftest import write_wav


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A two-clip `asr segment` output folder (draft.tsv, pkl, clips)."""
    out = tmp_path / "corpus"
    rows = [
        {"id": f"video_1_{n}", "verified": False, "text": t, "source": "talk.mp4", "start": s, "end": s + 1.0}
        for n, (t, s) in enumerate([("长沙话", 0.5), ("好吃", 2.0)], start=1)
    ]
    out.mkdir()
    write_corpus(out, rows, "tiny")
    for n in (1, 2):
        write_wav(out / AUDIO_FOLDER / f"01_{n:04d}.wav")
    return out


def _edit(corpus: Path, line: int, column: int, value: str) -> None:
    lines = (corpus / DRAFT).read_text(encoding="utf-8").splitlines()
    cells = lines[line - 1].split("\t")
    cells[column] = value
    lines[line - 1] = "\t".join(cells)
    (corpus / DRAFT).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _apply(corpus: Path, capsys) -> tuple[int, str]:
    code = main(["segment", "--apply-draft", str(corpus)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_a_decimal_comma_names_the_line(corpus: Path, capsys) -> None:
    _edit(corpus, 2, 4, "1,5")
    code, err = _apply(corpus, capsys)
    assert code == 2
    assert f"{corpus / DRAFT}:2: start must be seconds written with a dot (e.g. 1.5), not '1,5'" in err


def test_a_short_row_names_the_line(corpus: Path, capsys) -> None:
    lines = (corpus / DRAFT).read_text(encoding="utf-8").splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:3])
    (corpus / DRAFT).write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, err = _apply(corpus, capsys)
    assert code == 2
    assert f"{corpus / DRAFT}:3: 3 tab-separated fields, expected 6" in err


def test_an_unknown_or_misspelt_id_names_the_line(corpus: Path, capsys) -> None:
    _edit(corpus, 3, 0, "video_1_9")
    code, err = _apply(corpus, capsys)
    assert code == 2 and f"{corpus / DRAFT}:3: video_1_9 has no clip" in err
    _edit(corpus, 3, 0, "clip two")
    code, err = _apply(corpus, capsys)
    assert code == 2 and f"{corpus / DRAFT}:3: id 'clip two' is not a clip id like video_1_1" in err


def test_a_gbk_save_is_refused_with_the_encoding_named(corpus: Path, capsys) -> None:
    text = (corpus / DRAFT).read_text(encoding="utf-8")
    (corpus / DRAFT).write_bytes(text.encode("gbk"))
    code, err = _apply(corpus, capsys)
    assert code == 2 and f"{corpus / DRAFT}: not UTF-8" in err and "save it as UTF-8" in err


def test_excel_utf8_with_bom_is_read(corpus: Path, capsys) -> None:
    _edit(corpus, 2, 1, "yes")
    text = (corpus / DRAFT).read_text(encoding="utf-8")
    (corpus / DRAFT).write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode("utf-8"))
    code, _err = _apply(corpus, capsys)
    assert code == 0
    table = pickle.loads((corpus / "CS-Mage_fulldata.pkl").read_bytes())
    assert table["id"] == ["video_1_1", "video_1_2"] and table["verified"] == [True, False]
    assert table["start"] == [0.5, 2.0]
