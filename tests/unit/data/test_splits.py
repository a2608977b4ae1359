import random
from collections import Counter

import pytest

from asr.data.csmage import to_video_id
from asr.data.id_text import read_id_text_file
from asr.data.manifest import Utterance
from asr.data.splits import (
    assign_splits,
    parse_ratios,
    random_split,
    read_v1_split_files,
    read_v2_split_files,
    split_name,
    v2_split,
)
from asr.errors import ConfigError, DataError
from tests.conftest import SHARED_CS_MAGE


def _synthetic_durations(n=1085, seed=7):
    rng = random.Random(seed)
    return {f"video_{1 + i // 50}_{1 + i % 50}": round(rng.uniform(0.8, 12.0), 6) for i in range(n)}


def _utts(durations, split=None):
    return [Utterance(i, f"/a/{i}.wav", d, "好", "好", split) for i, d in durations.items()]


def test_v2_rule_gives_760_160_165_on_1085():
    assignment = v2_split(_synthetic_durations())
    assert Counter(assignment.values()) == {"train": 760, "validation": 160, "test": 165}


def test_v2_rule_is_deterministic_and_independent_of_input_order():
    durations = _synthetic_durations()
    shuffled = dict(random.Random(1).sample(sorted(durations.items()), len(durations)))
    assert v2_split(durations) == v2_split(shuffled)


def test_v2_rule_small_worked_example():
    # 20 clips: strata of 2 -> round(1.4)=1 train, round(0.3)=0 validation, 1 test each.
    durations = {f"u{i:02d}": float(i) for i in range(20)}
    assignment = v2_split(durations)
    assert Counter(assignment.values()) == {"train": 10, "test": 10}
    for start in range(10):  # u(start) and u(start+10) share a stratum: one of each
        assert {assignment[f"u{start:02d}"], assignment[f"u{start + 10:02d}"]} == {"train", "test"}


def test_v2_rule_breaks_duration_ties_by_id_and_rounds_to_6_decimals():
    a = v2_split({"b": 1.0, "a": 1.0, "c": 1.0000004})
    b = v2_split({"c": 1.0, "a": 1.0, "b": 1.0})
    assert a == b


def test_v2_strata_are_balanced_across_durations():
    durations = _synthetic_durations()
    assignment = v2_split(durations)
    ordered = sorted(durations, key=lambda i: (durations[i], i))
    for decile in range(10):
        chunk = ordered[decile * 108 : (decile + 1) * 108]
        share = sum(assignment[i] == "train" for i in chunk) / len(chunk)
        assert 0.55 < share < 0.85


def test_random_split_counts_and_seed():
    ids = [f"u{i}" for i in range(1085)]
    first = random_split(ids, seed=42, ratios=(8, 1, 1))
    assert Counter(first.values()) == {"train": 869, "validation": 108, "test": 108}
    assert first == random_split(list(reversed(ids)), seed=42, ratios=(8, 1, 1))
    assert first != random_split(ids, seed=43, ratios=(8, 1, 1))
    assert Counter(random_split(ids, 0, (1, 0, 1)).values()) == {"train": 543, "test": 542}


def test_parse_ratios():
    assert parse_ratios("8:1:1") == (8.0, 1.0, 1.0)
    assert parse_ratios("0.7:0.15:0.15") == (0.7, 0.15, 0.15)
    assert parse_ratios((8, 1, 1)) == parse_ratios([8.0, 1.0, 1.0]) == (8.0, 1.0, 1.0)
    for bad in ("8:1", "a:b:c", "0:1:1", "8:-1:1", (8, 1), (8, None, 1), ("a", 1, 1)):
        with pytest.raises(ConfigError, match="--ratios"):
            parse_ratios(bad)


def test_split_names():
    assert split_name("val") == "validation" and split_name("Dev") == "validation"
    with pytest.raises(DataError, match="unknown split 'holdout'"):
        split_name("holdout")


def _write_v2(folder, rows):
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "validation", "test"):
        body = "".join(f"{i},{split}\n" for i, s in rows if s == split)
        (folder / f"{split}.csv").write_text("sample_id,split\n" + body, encoding="utf-8")
    return folder


def test_v2_split_files_are_used_verbatim_and_mismatches_reported(tmp_path):
    folder = _write_v2(
        tmp_path / "v2", [("video_1_1", "train"), ("video_1_2", "test"), ("video_9_9", "validation")]
    )
    utts = _utts({"video_1_1": 1.0, "video_1_2": 2.0, "video_1_3": 3.0})
    result = assign_splits(utts, "v2", folder)
    assert result.assignment == {"video_1_1": "train", "video_1_2": "test"}
    assert result.listed_not_in_data == {"video_9_9": "validation.csv"}
    assert result.not_listed == ["video_1_3"]
    assert result.provenance["source"] == "split_files"
    assert set(result.provenance["files"]) == {"train.csv", "validation.csv", "test.csv"}
    assert len(result.provenance["files"]["test.csv"]["sha256"]) == 64


def test_v2_split_files_errors(tmp_path):
    folder = _write_v2(tmp_path / "v2", [("video_1_1", "train")])
    (folder / "test.csv").write_text("sample_id,split\nvideo_1_1,test\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.csv:2: video_1_1 is also listed as train in train\.csv"):
        read_v2_split_files(folder)
    (folder / "test.csv").unlink()
    with pytest.raises(
        DataError, match=r"protocol v2 needs train\.csv, validation\.csv, test\.csv; missing test\.csv"
    ):
        read_v2_split_files(folder)
    other = _write_v2(tmp_path / "other", [("x_1", "train")])
    with pytest.raises(DataError, match="none of its 1 ids match the data"):
        assign_splits(_utts({"video_1_1": 1.0}), "v2", other)


def test_v2_without_split_files_recomputes_with_a_warning(caplog):
    durations = _synthetic_durations(40)
    result = assign_splits(_utts(durations))
    assert result.assignment == v2_split(durations)
    assert result.provenance["source"] == "recomputed"
    assert "official CSVs" in caplog.text and "authoritative" in caplog.text


def test_v1_lists_map_ids_and_val_becomes_validation(tmp_path):
    folder = tmp_path / "v1"
    folder.mkdir()
    (folder / "train_text.txt").write_text("01_0001 好咯\n01_0002 蛮好\n", encoding="utf-8")
    (folder / "val_text.txt").write_text("02_0001 冒得\n", encoding="utf-8")
    (folder / "test_text.txt").write_text("02_0002 要得\n", encoding="utf-8")
    files = read_v1_split_files(folder)
    assert files.assignment == {"video_1_1": "train", "video_1_2": "train", "video_2_1": "validation",
                                "video_2_2": "test"}  # fmt: skip
    result = assign_splits(_utts({"video_1_1": 1.0, "video_2_1": 1.0}), "v1", folder)
    assert result.assignment == {"video_1_1": "train", "video_2_1": "validation"}
    assert set(result.listed_not_in_data) == {"video_1_2", "video_2_2"}


def test_v1_without_split_files_is_a_clear_error():
    with pytest.raises(
        ConfigError, match=r"cannot be recomputed exactly; get them from github\.com/Yaoooyu/CS-Mage"
    ):
        assign_splits(_utts({"a": 1.0}), "v1")


def test_existing_manifest_splits_are_kept_unless_forced():
    utts = _utts({"a": 1.0, "b": 2.0}, split="val")
    kept = assign_splits(utts)
    assert kept.assignment == {"a": "validation", "b": "validation"}
    assert kept.provenance["protocol"] == "manifest"
    forced = assign_splits(utts, "random", seed=1, ratios=(1, 0, 0))
    assert forced.assignment == {"a": "train", "b": "train"}
    utts[0].split = None
    with pytest.raises(DataError, match="1 of 2 manifest rows have a split"):
        assign_splits(utts)


def test_random_protocol_rejects_split_files(tmp_path):
    with pytest.raises(ConfigError, match="--split-files is only used with"):
        assign_splits(_utts({"a": 1.0}), "random", tmp_path)


@pytest.mark.skipif(not SHARED_CS_MAGE.is_dir(), reason="CS-Mage reference metadata not available")
class TestPublishedLists:
    def _transcript_ids(self):
        return {
            to_video_id(row.id) for row in read_id_text_file(SHARED_CS_MAGE / "transcripts_1085_plain.txt")
        }

    def test_official_v2_csvs(self):
        files = read_v2_split_files(SHARED_CS_MAGE / "splits-v2")
        assert Counter(files.assignment.values()) == {"train": 760, "validation": 160, "test": 165}
        ids = self._transcript_ids()
        assert len(ids) == 1085
        assert set(files.assignment) == ids

    def test_v1_lists(self):
        files = read_v1_split_files(SHARED_CS_MAGE / "lists-v1")
        assert Counter(files.assignment.values()) == {"train": 869, "validation": 108, "test": 108}
        assert set(files.assignment) == self._transcript_ids()
