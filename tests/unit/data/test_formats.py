import json
import pickle

import pytest

from asr.data.csmage import canonical_id, read_fulldata_pkl, to_source_id, to_video_id
from asr.data.formats import detect_format, read_corpus, resolve_format
from asr.errors import ASRError, DataError
from tests.conftest import CSMAGE_ROWS, build_csmage, write_kaldi


def _problems(result):
    return {(s.id, s.problem) for s in result.suspects}


def test_id_mapping_both_ways():
    assert to_source_id("video_1_1") == "01_0001"
    assert to_source_id("video_25_139") == "25_0139"
    assert to_video_id("07_0023") == "video_7_23"
    assert canonical_id("01_0001") == ("video_1_1", "01_0001")
    assert canonical_id("video_3_10") == ("video_3_10", "03_0010")
    assert canonical_id("spk1-utt2") == ("spk1-utt2", "spk1-utt2")
    with pytest.raises(ValueError):
        to_source_id("01_0001")


def test_csmage_zip_layout(csmage_corpus, tmp_path):
    audio_dir = tmp_path / "out" / "audio"
    assert detect_format(csmage_corpus.root) == "csmage"
    result = read_corpus(csmage_corpus.root, audio_dir)
    ids = [c.id for c in result.candidates]
    # Every pkl id with a decodable zip member becomes a candidate, in pkl order; text and
    # sample-rate checks come later. An undecodable member is flagged and its copy removed.
    assert ids == [row[0] for row in CSMAGE_ROWS if row[1] not in (None, "corrupt")]
    first = result.candidates[0]
    assert (first.source_id, first.format, first.text) == ("01_0001", "csmage", "今天天气蛮好咯")
    assert first.audio == (audio_dir / "01_0001.wav").resolve() and first.audio.is_file()
    assert _problems(result) == {
        ("video_1_3", "unreadable_audio"),
        ("video_1_4", "missing_audio"),
        ("video_99_1", "no_transcript"),
    }
    assert not (audio_dir / "01_0003.wav").exists()
    assert not (audio_dir / "99_0001.wav").exists()  # members without a transcript are not extracted
    assert not (audio_dir / "._01_0001.wav").exists()


def test_csmage_extraction_is_cached_by_content(csmage_corpus, tmp_path):
    audio_dir = tmp_path / "audio"
    read_corpus(csmage_corpus.root, audio_dir)
    target = audio_dir / "01_0001.wav"
    original = target.read_bytes()
    stamp = target.stat().st_mtime_ns
    read_corpus(csmage_corpus.root, audio_dir)
    assert target.stat().st_mtime_ns == stamp
    target.write_bytes(b"partial")  # a broken earlier extraction is redone
    read_corpus(csmage_corpus.root, audio_dir)
    assert target.read_bytes() == original
    target.write_bytes(original[:-4] + b"\x00\x01\x02\x03")  # same size, other content
    read_corpus(csmage_corpus.root, audio_dir)
    assert target.read_bytes() == original


def test_csmage_unpacked_folder_and_old_pkl_name(tmp_path):
    corpus = build_csmage(tmp_path / "cs", packed=False, pkl_name="CS-MSASR_fulldata.pkl")
    audio_dir = tmp_path / "audio"
    result = read_corpus(corpus.root, audio_dir, fmt="csmage")
    assert len(result.candidates) == len([r for r in CSMAGE_ROWS if r[1] is not None])
    assert result.candidates[0].audio == (corpus.root / "audio_wav" / "01_0001.wav").resolve()
    assert not audio_dir.exists()  # nothing to extract
    assert ("video_1_4", "missing_audio") in _problems(result)


def test_csmage_pkl_with_wrong_shape_is_a_data_error(tmp_path, make_wav):
    root = tmp_path / "cs"
    make_wav(root / "audio_wav" / "01_0001.wav")
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps({"ids": ["video_1_1"], "text": ["x"]}))
    with pytest.raises(DataError, match=r"CS-Mage_fulldata\.pkl: expected a dict with 'id' and 'raw_text'"):
        read_corpus(root, tmp_path / "audio")
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps({"id": ["video_1_1"], "raw_text": []}))
    with pytest.raises(DataError, match="'id' has 1 entries but 'raw_text' has 0"):
        read_fulldata_pkl(root / "CS-Mage_fulldata.pkl")
    (root / "CS-Mage_fulldata.pkl").unlink()
    with pytest.raises(DataError, match=r"CS-Mage layout needs CS-Mage_fulldata\.pkl"):
        read_corpus(root, tmp_path / "audio")


def test_corrupt_zip_is_a_data_error(tmp_path):
    root = tmp_path / "cs"
    root.mkdir()
    (root / "audio_wav.zip").write_bytes(b"PK not a zip")
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps({"id": ["video_1_1"], "raw_text": ["x"]}))
    with pytest.raises(DataError, match=r"audio_wav\.zip: not a readable zip archive"):
        read_corpus(root, tmp_path / "audio")


def test_video_folder_with_transcripts(tmp_path, make_video):
    root = tmp_path / "videos"
    make_video(root / "01_0001.mp4", seconds=0.5)
    make_video(root / "my clip.mkv", seconds=0.5, video=False)
    make_video(
        root / "01_0001.mov", seconds=0.5, video=False
    )  # same stem: sorts first, the .mp4 is the duplicate
    make_video(root / "05_0002.mp4", seconds=0.5)  # no transcript
    (root / "broken.mov").write_bytes(b"\x00" * 32)
    (root / "transcripts.txt").write_text(
        "01_0001 好咯好咯\nmy 错\nbroken 坏的\nmissing_clip 没有视频\n", encoding="utf-8"
    )
    (root / "notes.txt").write_text("ignored", encoding="utf-8")
    assert detect_format(root) == "video"
    audio_dir = tmp_path / "audio"
    result = read_corpus(root, audio_dir)
    assert [(c.id, c.source_id, c.text) for c in result.candidates] == [("video_1_1", "01_0001", "好咯好咯")]
    assert result.candidates[0].audio == (audio_dir / "01_0001.wav").resolve()
    assert result.candidates[0].extra["video"] == str((root / "01_0001.mov").resolve())
    assert any(s.problem == "duplicate_id" and s.file.endswith("01_0001.mp4") for s in result.suspects)
    assert _problems(result) == {
        ("video_1_1", "duplicate_id"),
        ("my clip", "no_transcript"),
        ("video_5_2", "no_transcript"),
        ("broken", "unreadable_audio"),
        ("my", "missing_audio"),
        ("missing_clip", "missing_audio"),
    }
    stamp = (audio_dir / "01_0001.wav").stat().st_mtime_ns
    read_corpus(root, audio_dir)
    assert (audio_dir / "01_0001.wav").stat().st_mtime_ns == stamp  # cached: newer than the clip


def test_video_folder_with_pkl_beside(tmp_path, make_video):
    root = tmp_path / "corpus" / "clips"
    make_video(root / "02_0003.mp4", seconds=0.4, video=False)
    pkl = {"id": ["video_2_3", "video_2_4"], "raw_text": ["蛮好", "冒得"]}
    (root.parent / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps(pkl))
    result = read_corpus(root, tmp_path / "audio", fmt="video")
    assert [(c.id, c.text) for c in result.candidates] == [("video_2_3", "蛮好")]
    assert _problems(result) == {("video_2_4", "missing_audio")}


def test_video_folder_without_transcripts_is_a_data_error(tmp_path, make_video):
    make_video(tmp_path / "v" / "a.mp4", seconds=0.3, video=False)
    with pytest.raises(DataError, match=r"expected transcripts\.txt"):
        read_corpus(tmp_path / "v", tmp_path / "audio")


def test_kaldi_layout(tmp_path, make_wav):
    root = tmp_path / "kaldi"
    make_wav(root / "wav" / "a.wav")
    make_wav(tmp_path / "abs.wav")
    (root / "wav.scp").write_text(
        f"01_0001 wav/a.wav\nutt2 {tmp_path / 'abs.wav'}\nutt3 wav/none.wav\nno_text wav/a.wav\n",
        encoding="utf-8",
    )
    (root / "text").write_text(
        "01_0001 好咯\nutt2 蛮好\nutt3 冒得\nutt2 重复\norphan 孤儿\n", encoding="utf-8"
    )
    (root / "utt2spk").write_text("01_0001 spk1\nutt2 spk2\n", encoding="utf-8")
    assert detect_format(root) == "kaldi"
    result = read_corpus(root, tmp_path / "audio")
    rows = [(c.id, c.source_id, c.audio, c.text, c.extra) for c in result.candidates]
    assert rows == [
        ("video_1_1", "01_0001", (root / "wav" / "a.wav").resolve(), "好咯", {"speaker": "spk1"}),
        ("utt2", "utt2", (tmp_path / "abs.wav").resolve(), "蛮好", {"speaker": "spk2"}),
        ("utt3", "utt3", (root / "wav" / "none.wav").resolve(), "冒得", {}),
    ]
    assert _problems(result) == {
        ("utt2", "duplicate_id"),
        ("no_text", "no_transcript"),
        ("orphan", "missing_audio"),
    }


def test_kaldi_pipes_and_segments_are_refused(tmp_path):
    root = write_kaldi(tmp_path / "kaldi", wav_scp="u1 sox a.flac -t wav - |\n", text="u1 好\n")
    with pytest.raises(DataError, match=r"wav\.scp:1: piped command for u1 is not supported"):
        read_corpus(root, tmp_path / "audio")
    (root / "wav.scp").write_text("u1 feats.ark:123\n", encoding="utf-8")
    with pytest.raises(DataError, match="ark offsets are not supported"):
        read_corpus(root, tmp_path / "audio")
    (root / "segments").write_text("s1 u1 0.0 1.0\n", encoding="utf-8")
    with pytest.raises(DataError, match="segments are not supported"):
        read_corpus(root, tmp_path / "audio")


def test_funasr_jsonl(tmp_path, make_wav):
    make_wav(tmp_path / "data" / "a.wav")
    path = tmp_path / "data" / "train.jsonl"
    lines = [
        {"key": "01_0001", "source": "a.wav", "target": "好咯", "source_len": 100, "target_len": 2},
        {"key": "k2", "source": str(tmp_path / "data" / "a.wav"), "target": "蛮好"},
    ]
    path.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    for root in (path, path.parent):
        assert detect_format(root) == "funasr"
        result = read_corpus(root, tmp_path / "audio")
        first, second = result.candidates
        assert (first.id, first.source_id, first.text) == ("video_1_1", "01_0001", "好咯")
        assert first.audio == (tmp_path / "data" / "a.wav").resolve()
        assert first.extra == {"source_len": 100, "target_len": 2}
        assert (second.id, second.extra) == ("k2", {})
    path.write_text('{"key": "x", "source": "a.wav"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl:1: missing key\(s\) target"):
        read_corpus(path, tmp_path / "audio", fmt="funasr")


def test_manifest_jsonl_keeps_split_and_extras(tmp_path, make_wav):
    make_wav(tmp_path / "m" / "a.wav")
    rows = [
        {
            "id": "video_1_1",
            "audio": "a.wav",
            "text": "好咯",
            "split": "test",
            "speaker": "s1",
            "duration": 9,
        },
        {"id": "b", "audio": "a.wav", "text": "蛮好"},
    ]
    path = tmp_path / "m" / "rows.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert detect_format(path) == "manifest"
    first, second = read_corpus(path, tmp_path / "audio").candidates
    assert (first.id, first.source_id, first.split, first.extra) == (
        "video_1_1",
        "01_0001",
        "test",
        {"speaker": "s1"},
    )
    assert first.audio == (tmp_path / "m" / "a.wav").resolve()
    assert second.split is None


def test_prepared_output_folder_reads_all_jsonl_only(tmp_path, make_wav):
    make_wav(tmp_path / "a.wav")
    manifests = tmp_path / "prepared" / "manifests"
    manifests.mkdir(parents=True)
    row = json.dumps({"id": "a", "audio": str(tmp_path / "a.wav"), "text": "好", "split": "train"})
    for name in ("train", "all"):
        (manifests / f"{name}.jsonl").write_text(row + "\n", encoding="utf-8")
    (manifests / "test.jsonl").write_text("", encoding="utf-8")
    assert detect_format(tmp_path / "prepared") == "manifest"
    result = read_corpus(tmp_path / "prepared", tmp_path / "audio")
    assert [c.id for c in result.candidates] == ["a"]
    assert result.sources == [str(manifests / "all.jsonl")]


def test_wrong_data_root_and_unknown_layout_errors(tmp_path):
    with pytest.raises(ASRError, match=r"--data-root .*nowhere does not exist; expected a CS-Mage folder"):
        detect_format(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("hi", encoding="utf-8")
    with pytest.raises(ASRError, match=r"unknown corpus layout; expected a CS-Mage folder .* Kaldi folder"):
        read_corpus(tmp_path / "empty", tmp_path / "audio")
    (tmp_path / "empty" / "CS-Mage" / "audio_wav").mkdir(parents=True)
    with pytest.raises(ASRError, match=r"unknown corpus layout \(did you mean .*CS-Mage\?\)"):
        detect_format(tmp_path / "empty")
    (tmp_path / "file.csv").write_text("a,b\n", encoding="utf-8")
    with pytest.raises(ASRError, match=r"is a file but not a \.jsonl"):
        detect_format(tmp_path / "file.csv")
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"path": "x"}\n', encoding="utf-8")
    with pytest.raises(ASRError, match=r"odd\.jsonl:1: neither a FunASR line"):
        detect_format(odd)
    with pytest.raises(ASRError, match="unknown --format 'wav'"):
        read_corpus(tmp_path / "empty", tmp_path / "audio", fmt="wav")
    with pytest.raises(DataError, match=r"Kaldi layout needs both wav\.scp and text"):
        read_corpus(tmp_path / "empty", tmp_path / "audio", fmt="kaldi")


def test_resolve_format_detects_or_checks_the_given_layout(tmp_path):
    (tmp_path / "wav.scp").write_text("u1 a.wav\n", encoding="utf-8")
    assert resolve_format(tmp_path) == "kaldi"
    assert resolve_format(tmp_path, "funasr") == "funasr"  # as given; the reader will complain
    with pytest.raises(ASRError, match="unknown --format 'tsv'"):
        resolve_format(tmp_path, "tsv")
    with pytest.raises(ASRError, match="does not exist"):
        resolve_format(tmp_path / "nowhere", "kaldi")
