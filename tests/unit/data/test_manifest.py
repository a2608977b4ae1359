import json

import pytest

from asr.data.manifest import Utterance, read_manifest, write_manifest
from asr.errors import DataError


def _utt(utt_id="video_1_1", **extra):
    return Utterance(utt_id, "/data/a.wav", 1.5, "长沙话，好咯！", "长沙话好咯", "test", extra)


def test_round_trip_keeps_extra_keys_and_key_order(tmp_path):
    rows = [_utt(source_id="01_0001", format="csmage", speaker="s1"), _utt("video_1_2")]
    path = write_manifest(tmp_path / "m" / "test.jsonl", rows)
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert list(first) == [
        "id",
        "audio",
        "duration",
        "text",
        "text_norm",
        "split",
        "source_id",
        "format",
        "speaker",
    ]
    assert "长沙话" in path.read_text(encoding="utf-8")  # not ASCII-escaped
    assert read_manifest(path) == rows
    assert [p.name for p in path.parent.iterdir()] == ["test.jsonl"]


def test_extra_cannot_override_core_keys():
    row = Utterance("a", "/x.wav", 1.0, "好", "好", "train", {"id": "other", "k": 1}).to_dict()
    assert row["id"] == "a" and row["k"] == 1


def test_relative_audio_is_resolved_against_the_manifest(tmp_path):
    path = tmp_path / "sub" / "m.jsonl"
    path.parent.mkdir()
    path.write_text(json.dumps({"id": "a", "audio": "wav/a.wav", "text": "好咯"}) + "\n", encoding="utf-8")
    (row,) = read_manifest(path)
    assert row.audio == str(tmp_path.resolve() / "sub" / "wav" / "a.wav")
    assert row.duration is None and row.split is None
    assert row.text_norm == "好咯"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(
            '{"id": "a", "audio": "a.wav", "text": "x"}\n\n{"id": "b", \n',
            r"m\.jsonl:3: invalid JSON",
            id="bad_json_names_file_and_line",
        ),
        pytest.param(
            '{"id": "a", "text": "x"}\n',
            r"m\.jsonl:1: missing key\(s\) audio",
            id="missing_keys_name_file_and_line",
        ),
        pytest.param("[1, 2]\n", r"m\.jsonl:1: expected a JSON object", id="non_object_line_is_an_error"),
    ],
)
def test_malformed_manifest_is_refused(tmp_path, content: str, error: str):
    path = tmp_path / "m.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=error):
        read_manifest(path)


def test_duplicate_ids_are_an_error_unless_allowed(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [_utt("a"), _utt("b"), _utt("a")])
    with pytest.raises(DataError, match=r"m\.jsonl:3: duplicate id 'a' \(first on line 1\)"):
        read_manifest(path)
    assert len(read_manifest(path, unique=False)) == 3


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: cannot open"):
        read_manifest(tmp_path / "nope.jsonl")


def test_non_utf8_manifest_is_a_data_error(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"id": "a", "audio": "a.wav", "text": "café"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1\.jsonl: not UTF-8 text"):
        read_manifest(path)


def test_failed_write_keeps_the_old_manifest_and_leaves_no_temp_file(tmp_path):
    path = write_manifest(tmp_path / "m.jsonl", [_utt()])
    before = path.read_bytes()
    with pytest.raises(AttributeError):
        write_manifest(path, [_utt(), "not an utterance"])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.jsonl"]
