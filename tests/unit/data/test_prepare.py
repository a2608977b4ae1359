import csv
import json
import pickle
from collections import Counter

import pytest
import soundfile as sf

from asr.cli import main
from asr.data.csmage import to_video_id
from asr.data.formats import FORMATS
from asr.data.id_text import read_id_text_file
from asr.data.manifest import read_manifest
from asr.data.prepare import (
    PREPARERS,
    prepare,
    prepare_csmage,
    prepare_funasr_jsonl,
    prepare_kaldi,
    prepare_manifests,
    prepare_videos,
)
from asr.errors import ConfigError, DataError
from tests.conftest import SHARED_CS_MAGE, write_kaldi, write_wav


def _suspects(out):
    with (out / "reports" / "suspects.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _snapshot(out):
    return {p.relative_to(out): p.read_bytes() for p in sorted((out / "manifests").iterdir())} | {
        p.relative_to(out): p.read_bytes() for p in sorted((out / "reports").iterdir())
    }


def _write_v2(folder, assignment):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        rows = "".join(f"{i},{split}\n" for i, s in assignment.items() if s == split)
        (folder / f"{split}.csv").write_text("sample_id,split\n" + rows, encoding="utf-8")
    return folder


def test_prepare_csmage_end_to_end(csmage_corpus, tmp_path):
    out = tmp_path / "out"
    split_files = _write_v2(
        tmp_path / "splits",
        {"video_1_1": "train", "video_1_2": "train", "video_2_2": "train", "video_2_3": "validation",
         "video_3_1": "validation", "video_3_2": "test", "video_3_3": "test", "video_1_4": "test",
         "video_7_7": "train"},
    )  # fmt: skip
    result = prepare(csmage_corpus.root, out, split_files=split_files)

    rows = read_manifest(out / "manifests" / "all.jsonl")
    assert [u.id for u in rows] == [i for i in csmage_corpus.ok if i != "video_3_4"]
    assert Counter(u.split for u in rows) == {"train": 3, "validation": 2, "test": 2}
    for name in ("train", "validation", "test"):
        assert [u.split for u in read_manifest(out / "manifests" / f"{name}.jsonl")] == [name] * len(
            result.splits[name]
        )
    first = rows[0]
    assert first.to_dict() == {
        "id": "video_1_1",
        "audio": str((out / "audio" / "01_0001.wav").resolve()),
        "duration": 1.0,
        "text": "今天天气蛮好咯",
        "text_norm": "今天天气蛮好咯",
        "split": "train",
        "source_id": "01_0001",
        "format": "csmage",
    }
    converted = next(u for u in rows if u.id == "video_1_2")
    info = sf.info(converted.audio)
    assert (info.samplerate, info.channels) == (16000, 1) and converted.audio.startswith(str(out.resolve()))
    markup = next(u for u in rows if u.id == "video_2_2")
    assert markup.text == "<笑>好咯好咯" and markup.text_norm == "笑好咯好咯"

    found = {(s["id"], s["problem"]) for s in _suspects(out)}
    expected = set(csmage_corpus.excluded.items())
    expected |= {(i, p) for i, problems in csmage_corpus.flagged.items() for p in problems}
    expected |= {("video_3_4", "missing_from_split_files"), ("video_7_7", "missing_audio")}
    assert found == expected  # video_1_4 is flagged once (missing_audio), not again for the split files

    report = json.loads((out / "reports" / "data_validation.json").read_text(encoding="utf-8"))
    assert report["counts"] == {"train": 3, "validation": 2, "test": 2, "all": 7}
    assert report["formats_seen"] == ["csmage"] and report["protocol"] == "v2"
    assert report["split_provenance"]["split_files"] == str(split_files.resolve())
    assert report["missing_ids"] == {
        "in_split_files_not_in_data": {"video_1_4": "test.csv", "video_7_7": "train.csv"},
        "in_data_not_in_split_files": ["video_3_4"],
    }
    assert report["suspects"]["total"] == len(expected)
    assert report["suspects"]["excluded_ids"] == len(csmage_corpus.excluded) + 2
    assert report["duration_seconds"]["all"]["min"] == 0.5 and report["duration_seconds"]["all"]["max"] == 1.2
    assert report["hours"]["all"] == round(sum(u.duration for u in rows) / 3600, 4)


def test_prepare_is_idempotent(csmage_corpus, tmp_path):
    out = tmp_path / "out"
    prepare(csmage_corpus.root, out, protocol="random")
    before = _snapshot(out)
    audio = {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")}
    prepare(csmage_corpus.root, out, protocol="random")
    assert _snapshot(out) == before
    assert {p: p.stat().st_mtime_ns for p in (out / "audio").rglob("*.wav")} == audio


def test_prepare_videos_with_recomputed_v2(tmp_path, make_video, caplog):
    root = tmp_path / "videos"
    for index in range(1, 4):
        make_video(root / f"01_{index:04d}.mp4", seconds=0.5 + index / 10, video=index == 1)
    (root / "transcripts.txt").write_text("01_0001 好咯\n01_0002 蛮好的\n01_0003 冒得事\n", encoding="utf-8")
    out = tmp_path / "out"
    prepare(root, out)
    rows = read_manifest(out / "manifests" / "all.jsonl")
    assert [(u.id, u.extra["source_id"], u.extra["format"]) for u in rows] == [
        ("video_1_1", "01_0001", "video"),
        ("video_1_2", "01_0002", "video"),
        ("video_1_3", "01_0003", "video"),
    ]
    for utt in rows:
        info = sf.info(utt.audio)
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert utt.duration == round(info.frames / 16000, 6)
    report = json.loads((out / "reports" / "data_validation.json").read_text(encoding="utf-8"))
    assert report["split_provenance"]["source"] == "recomputed"
    assert "authoritative" in caplog.text


def test_prepare_manifest_keeps_splits_and_kaldi_with_random(tmp_path):
    wav = write_wav(tmp_path / "a.wav", 1.0)
    rows = [
        {"id": f"u{i}", "audio": str(wav), "text": "好咯好咯", "split": s}
        for i, s in enumerate(["train", "dev"])
    ]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = prepare(tmp_path / "in.jsonl", tmp_path / "out")
    assert {k: [u.id for u in v] for k, v in result.splits.items()} == {
        "train": ["u0"],
        "validation": ["u1"],
        "test": [],
    }
    assert result.report["protocol"] == "manifest"

    kaldi = write_kaldi(
        tmp_path / "kaldi",
        wav_scp="".join(f"k{i} {wav}\n" for i in range(10)),
        text="".join(f"k{i} 好咯好咯\n" for i in range(10)),
    )
    result = prepare(kaldi, tmp_path / "out_kaldi", protocol="random", ratios="6:2:2", seed=3)
    assert {k: len(v) for k, v in result.splits.items()} == {"train": 6, "validation": 2, "test": 2}
    assert result.report["split_provenance"] == {"protocol": "random", "source": "random", "seed": 3,
                                                 "ratios": [6.0, 2.0, 2.0]}  # fmt: skip


def test_prepare_with_nothing_usable_writes_reports_then_fails(tmp_path):
    root = write_kaldi(tmp_path / "kaldi", wav_scp="u1 missing.wav\n", text="u1 好\n")
    with pytest.raises(DataError, match=r"no usable utterances; see .*suspects\.csv"):
        prepare(root, tmp_path / "out")
    assert [s["problem"] for s in _suspects(tmp_path / "out")] == ["missing_audio"]


def test_prepare_refuses_out_equal_to_data_root(csmage_corpus):
    with pytest.raises(ConfigError, match="--out must differ from --data-root"):
        prepare(csmage_corpus.root, csmage_corpus.root)


def test_bad_split_options_fail_before_reading_the_corpus(csmage_corpus, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="protocol v1 needs --split-files"):
        prepare(csmage_corpus.root, out, protocol="v1")
    with pytest.raises(DataError, match=r"protocol v2 needs train\.csv"):
        prepare(csmage_corpus.root, out, split_files=tmp_path)
    with pytest.raises(ConfigError, match="--ratios"):
        prepare(csmage_corpus.root, out, protocol="random", ratios="1:2")
    assert not out.exists()


def test_cli_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["prepare", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --data-root") and "does not exist; expected a CS-Mage folder" in err
    assert len(err.strip().splitlines()) == 1
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x", encoding="utf-8")
    assert main(["prepare", "--data-root", str(tmp_path / "junk"), "--out", str(tmp_path / "o")]) == 2
    assert "unknown corpus layout" in capsys.readouterr().err


def test_cli_runs_prepare(csmage_corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["prepare", "--data-root", str(csmage_corpus.root), "--out", str(out), "--protocol", "random",
                 "--ratios", "6:1:1", "--format", "csmage"])  # fmt: skip
    assert code == 0
    assert len(read_manifest(out / "manifests" / "all.jsonl")) == len(csmage_corpus.ok)
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out / 'manifests'}: train 6, validation 1, test 1 (0.00 h); ")
    assert printed.rstrip().endswith(f"suspects in {out / 'reports' / 'suspects.csv'}")


# The library entry points ---------------------------------------------------------------


def test_prepare_csmage_writes_what_the_cli_writes(csmage_corpus, tmp_path):
    out = tmp_path / "out"
    split_files = _write_v2(
        tmp_path / "splits", {"video_1_1": "train", "video_1_2": "test", "video_2_2": "test"}
    )
    root = str(csmage_corpus.root)
    assert main(["prepare", "--data-root", root, "--out", str(out), "--split-files", str(split_files)]) == 0
    by_cli = _snapshot(out)
    result = prepare_csmage(csmage_corpus.root, out, split_files=split_files)
    assert _snapshot(out) == by_cli
    assert result.layout == "csmage" and result.counts == {"train": 1, "validation": 0, "test": 2, "all": 3}
    names = ("train", "validation", "test", "all")
    assert result.manifests == {name: out / "manifests" / f"{name}.jsonl" for name in names}
    assert result.manifest_dir == out / "manifests"
    assert [u.id for u in read_manifest(result.manifests["test"])] == ["video_1_2", "video_2_2"]
    assert result.report_path == out / "reports" / "data_validation.json"
    assert result.suspects_path == out / "reports" / "suspects.csv"
    assert len(result.suspects) == len(_suspects(out))


def test_prepare_dispatches_to_the_layout_function(tmp_path, monkeypatch):
    assert PREPARERS.keys() == set(FORMATS)
    assert PREPARERS["kaldi"] is prepare_kaldi and PREPARERS["funasr"] is prepare_funasr_jsonl
    kaldi = write_kaldi(tmp_path / "kaldi", wav_scp="u1 a.wav\n", text="u1 好咯\n")
    calls = []
    monkeypatch.setitem(PREPARERS, "kaldi", lambda *args, **kwargs: calls.append((args, kwargs)))
    prepare(kaldi, tmp_path / "out", protocol="random", seed=7)
    assert calls == [((kaldi, tmp_path / "out"), {"protocol": "random", "seed": 7})]


def test_layout_functions_on_small_corpora(tmp_path, make_video):
    wav = write_wav(tmp_path / "a.wav", 1.0)
    kaldi = write_kaldi(
        tmp_path / "kaldi",
        wav_scp="".join(f"k{i} {wav}\n" for i in range(4)),
        text="".join(f"k{i} 好咯好咯\n" for i in range(4)),
    )
    result = prepare_kaldi(kaldi, tmp_path / "k", protocol="random", ratios=(2, 1, 1))
    assert result.layout == "kaldi" and result.counts == {"train": 2, "validation": 1, "test": 1, "all": 4}
    assert result.report["split_provenance"]["ratios"] == [2.0, 1.0, 1.0]

    funasr = tmp_path / "funasr.jsonl"
    rows = [{"key": f"f{i}", "source": str(wav), "target": "好咯好咯", "source_len": 9} for i in range(3)]
    funasr.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    result = prepare_funasr_jsonl(funasr, tmp_path / "f")
    assert result.layout == "funasr" and result.report["split_provenance"]["source"] == "recomputed"
    assert read_manifest(result.manifests["all"])[0].extra["source_len"] == 9

    result = prepare_manifests(tmp_path / "k", tmp_path / "m")  # an earlier output folder; splits kept
    assert result.layout == "manifest" and result.report["protocol"] == "manifest"
    assert {k: [u.id for u in v] for k, v in result.splits.items()} == {
        k: [u.id for u in read_manifest(tmp_path / "k" / "manifests" / f"{k}.jsonl")] for k in result.splits
    }

    videos = tmp_path / "videos"
    make_video(videos / "01_0001.mp4", seconds=0.6)
    (videos / "transcripts.txt").write_text("01_0001 好咯\n", encoding="utf-8")
    result = prepare_videos(videos, tmp_path / "v", protocol="random")
    assert result.layout == "video" and [u.id for u in result.splits["train"]] == ["video_1_1"]


def test_layout_function_on_the_wrong_layout_and_bad_keywords(csmage_corpus, tmp_path):
    with pytest.raises(DataError, match=r"Kaldi layout needs both wav\.scp and text"):
        prepare_kaldi(csmage_corpus.root, tmp_path / "out_kaldi")
    assert not any((tmp_path / "out_kaldi").iterdir())  # --out is checked first, then nothing written
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) protcol"):
        prepare_csmage(csmage_corpus.root, tmp_path / "out", protcol="v1")
    with pytest.raises(ConfigError, match="--ratios"):
        prepare_csmage(csmage_corpus.root, tmp_path / "out", protocol="random", ratios=(0, 1, 1))
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(not SHARED_CS_MAGE.is_dir(), reason="CS-Mage reference metadata not available")
def test_full_size_corpus_with_official_v2_csvs(tmp_path):
    """1,085 tiny WAVs named like the distribution + the published transcripts and CSVs."""
    rows = read_id_text_file(SHARED_CS_MAGE / "transcripts_1085_plain.txt")
    root = tmp_path / "CS-Mage"
    clip = write_wav(tmp_path / "clip.wav", seconds=0.1).read_bytes()  # the shortest clip kept
    (root / "audio_wav").mkdir(parents=True)
    for row in rows:
        (root / "audio_wav" / f"{row.id}.wav").write_bytes(clip)
    data = {"id": [to_video_id(r.id) for r in rows], "raw_text": [r.text for r in rows]}
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps(data))
    result = prepare(root, tmp_path / "out", split_files=SHARED_CS_MAGE / "splits-v2")
    assert result.report["counts"] == {"train": 760, "validation": 160, "test": 165, "all": 1085}
    assert result.report["missing_ids"] == {
        "in_split_files_not_in_data": {},
        "in_data_not_in_split_files": [],
    }
