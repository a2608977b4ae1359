"""The held-out generated set (``tools/make_heldout.py``): which transcripts, which voices, the
layout ``asr prepare`` reads, determinism, and clear errors. A fake metadata folder of 8
transcripts; 3 espeak-ng clips (about 2 s); the real metadata folder only where it exists."""

from __future__ import annotations

import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from asr.cli import main, run_recipe
from asr.data.demo_sentences import DEMO_LINES
from asr.errors import ASRError, ConfigError
from tools import make_heldout as mh
from tools.make_demo import SPEAKERS

SHARED = mh.DEFAULT_CS_MAGE  # beside the checkout, as tests/conftest.py's SHARED_CS_MAGE
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not on PATH")

TRANSCRIPTS = {
    "01_0001": "这种评价就非常非常高啊!",
    "01_0002": "谢谢大家。",
    "01_0010": "有点像评价知识分子了啊。",  # not in the test split below
    "02_0003": "5G网络好快啰。",  # a digit and a latin letter: not speakable
    "02_0004": "好。",  # too short
    "03_0001": "怎么说呢，这个东西确确实实也比较有趣。",
    "03_0002": DEMO_LINES[0].text,  # a demo sentence: never held out
    "04_0007": "今天天气蛮好的，出去走一走。",
}
TEST_IDS = ["video_1_1", "video_1_2", "video_2_3", "video_2_4", "video_3_1", "video_3_2", "video_4_7"]


@pytest.fixture
def meta(tmp_path: Path) -> Path:
    root = tmp_path / "cs-mage"
    (root / "splits-v2").mkdir(parents=True)
    lines = [f"{k} {v}" for k, v in TRANSCRIPTS.items()]
    (root / "transcripts_1085_punct.txt").write_text("\n".join(lines), encoding="utf-8")  # no final newline
    rows = ["sample_id,split", *(f"{i},test" for i in TEST_IDS), "video_1_10,train"]
    (root / "splits-v2" / "test.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_selection_is_speakable_test_transcripts_evenly_spaced(meta: Path) -> None:
    kept = [
        "这种评价就非常非常高啊!",
        "谢谢大家。",
        "怎么说呢，这个东西确确实实也比较有趣。",
        "今天天气蛮好的，出去走一走。",
    ]
    assert [s.text for s in mh.select_sentences(meta, 4, 4, 24)] == kept
    assert [s.text for s in mh.select_sentences(meta, 2, 4, 24)] == [kept[0], kept[2]]
    assert all(
        s.pinyin == s.text for s in mh.select_sentences(meta, 4, 4, 24)
    )  # espeak-ng reads the characters
    with pytest.raises(ConfigError, match="only 4 test transcripts"):
        mh.select_sentences(meta, 5, 4, 24)


def test_voices_are_none_of_the_demos() -> None:
    demo = {(s.voice, s.wpm, s.pitch) for s in SPEAKERS}
    assert not demo & {(s.voice, s.wpm, s.pitch) for s in mh.HELDOUT_SPEAKERS}
    assert not {s.voice for s in SPEAKERS} & {s.voice for s in mh.HELDOUT_SPEAKERS}


def test_missing_metadata_is_one_clear_error(tmp_path: Path, meta: Path, capsys) -> None:
    with pytest.raises(ASRError, match="no such folder"):
        mh.make_heldout(tmp_path / "absent", tmp_path / "out")
    (meta / "splits-v2" / "test.csv").unlink()
    with pytest.raises(ASRError, match=r"test\.csv not found"):
        mh.make_heldout(meta, tmp_path / "out")
    argv = ["--cs-mage", str(tmp_path / "absent"), "--out", str(tmp_path / "out")]
    assert run_recipe(mh, argv, prog="python -m tools.make_heldout") == 2
    assert capsys.readouterr().err.startswith("error: --cs-mage")
    assert not (tmp_path / "out").exists()


@needs_espeak
def test_the_set_is_deterministic_and_prepare_reads_it(meta: Path, tmp_path: Path) -> None:
    first = mh.make_heldout(meta, tmp_path / "a", 3, min_chars=4)
    mh.make_heldout(meta, tmp_path / "b", 3, min_chars=4)
    corpus = tmp_path / "a" / mh.CORPUS
    for name in ("audio_wav.zip", "CS-Mage_fulldata.pkl"):
        assert (corpus / name).read_bytes() == (tmp_path / "b" / mh.CORPUS / name).read_bytes()
    with (corpus / "CS-Mage_fulldata.pkl").open("rb") as f:
        table = pickle.load(f)
    assert table["id"] == ["video_1_1", "video_2_1", "video_3_1"]  # one speaker each
    assert table["speaker"] == [s.name for s in mh.HELDOUT_SPEAKERS[:3]]
    with zipfile.ZipFile(corpus / "audio_wav.zip") as zf:
        assert zf.namelist() == ["audio_wav/01_0001.wav", "audio_wav/02_0001.wav", "audio_wav/03_0001.wav"]
    assert first.clips == 3 and first.videos == 0 and first.seconds > 2
    assert main(["prepare", "--data-root", str(corpus), "--out", str(tmp_path / "data")]) == 0
    rows = (tmp_path / "data" / "manifests" / "all.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 3


@needs_espeak
@pytest.mark.skipif(not SHARED.is_dir(), reason=f"{SHARED} (CS-Mage metadata) is absent")
def test_the_real_metadata_gives_forty_transcripts_of_the_test_split() -> None:
    sentences = mh.select_sentences(SHARED, 40)
    assert len({s.text for s in sentences}) == 40
    assert not {s.text for s in sentences} & {line.text for line in DEMO_LINES}
