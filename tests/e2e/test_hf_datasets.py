"""Hugging Face datasets in and out: ``asr prepare --hf-dataset`` and ``--to-hf`` on the demo corpus.

A local ``audiofolder`` and a ``save_to_disk`` dataset of the demo clips must prepare into the
manifests that ``asr prepare`` writes for the same clips in our layout (ids, texts, durations,
and the recomputed v2 split, which depends on them); ``--to-hf`` output must load with
``load_from_disk`` and prepare back into the same manifests.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from asr.cli import main
from asr.data.manifest import Utterance, read_manifest

datasets = pytest.importorskip("datasets")


@pytest.fixture(autouse=True)
def _offline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_dataset's Arrow cache in the test folder, never the user's."""
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))


def _rows(prepared: Path) -> list[Utterance]:
    return read_manifest(prepared / "manifests" / "all.jsonl")


def _key(rows: list[Utterance]) -> list[tuple]:
    return sorted((u.id, u.text, u.text_norm, u.duration, u.split) for u in rows)


def _prepare(*args: str) -> int:
    return main(["prepare", *args])


def _audio_dataset(rows: list[Utterance]) -> datasets.Dataset:
    """A Dataset with ``id``, ``audio`` (WAV bytes) and ``text``, built without torchcodec."""
    audio = [{"bytes": Path(u.audio).read_bytes(), "path": Path(u.audio).name} for u in rows]
    data = datasets.Dataset.from_dict(
        {"id": [u.id for u in rows], "audio": audio, "text": [u.text for u in rows]}
    )
    return data.cast_column("audio", datasets.Audio())


def test_audiofolder_prepares_like_our_layout(demo_data, tmp_path):
    ours = _rows(demo_data)
    folder = tmp_path / "audiofolder"
    folder.mkdir()
    with (folder / "metadata.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "text"])
        for utt in ours:
            shutil.copy(utt.audio, folder / f"{utt.extra['source_id']}.wav")
            writer.writerow([f"{utt.extra['source_id']}.wav", utt.text])

    out = tmp_path / "prepared"
    assert _prepare("--hf-dataset", str(folder), "--out", str(out)) == 0
    theirs = _rows(out)
    assert len(ours) == 120
    assert _key(theirs) == _key(ours)
    assert {u.extra["format"] for u in theirs} == {"hf"}
    assert (out / "reports" / "suspects.csv").read_text(encoding="utf-8") == "id,file,problem,detail\n"


def test_save_to_disk_dataset_prepares_like_our_layout(demo_data, tmp_path):
    ours = _rows(demo_data)
    saved = tmp_path / "saved"
    _audio_dataset(ours).save_to_disk(str(saved))

    out = tmp_path / "prepared"
    assert _prepare("--hf-dataset", str(saved), "--out", str(out)) == 0
    assert _key(_rows(out)) == _key(ours)
    cached = sorted(p.name for p in (out / "audio" / "hf").iterdir())
    assert len(cached) == 120 and cached[0].startswith("video_1_1-") and cached[0].endswith(".wav")


def test_to_hf_round_trips_through_load_from_disk(demo_data, tmp_path):
    hf_dir, first = tmp_path / "cs-mage-hf", tmp_path / "first"
    assert _prepare("--data-root", str(demo_data), "--out", str(first), "--to-hf", str(hf_dir)) == 0

    loaded = datasets.load_from_disk(str(hf_dir))
    assert list(loaded) == ["train", "validation", "test"]
    features = loaded["train"].features
    assert list(features) == ["audio", "text", "text_norm", "id", "duration"]
    assert features["audio"] == datasets.Audio(sampling_rate=16000)
    by_split = {name: sorted(loaded[name]["id"]) for name in loaded}
    assert by_split == {s: sorted(u.id for u in _rows(demo_data) if u.split == s) for s in by_split}

    back = tmp_path / "back"
    assert _prepare("--hf-dataset", str(hf_dir), "--out", str(back)) == 0
    assert _key(_rows(back)) == _key(_rows(demo_data))

    # a second --to-hf replaces the first; a folder holding something else is refused
    assert _prepare("--data-root", str(back), "--out", str(tmp_path / "again"), "--to-hf", str(hf_dir)) == 0
    assert datasets.load_from_disk(str(hf_dir))["test"].num_rows == loaded["test"].num_rows
    assert _prepare("--data-root", str(back), "--out", str(tmp_path / "x"), "--to-hf", str(demo_data)) == 2


def test_split_map_and_split_names(demo_data, tmp_path, capsys):
    rows = _rows(demo_data)
    parts = {"train": "train", "dev": "validation", "test": "test"}
    dataset = datasets.DatasetDict(
        {theirs: _audio_dataset([u for u in rows if u.split == ours]) for theirs, ours in parts.items()}
    )
    saved = tmp_path / "dict"
    dataset.save_to_disk(str(saved))

    default = tmp_path / "default"  # dev is read as validation without a map
    assert _prepare("--hf-dataset", str(saved), "--out", str(default)) == 0
    assert _key(_rows(default)) == _key(rows)

    mapped = tmp_path / "mapped"  # only the mapped splits are read, into the named ones
    assert (
        _prepare("--hf-dataset", str(saved), "--out", str(mapped), "--split-map", "train=train,test=dev") == 0
    )
    got = {u.id: u.split for u in _rows(mapped)}
    assert got == {u.id: "train" if u.split == "train" else "test" for u in rows if u.split != "test"}

    capsys.readouterr()
    assert _prepare("--hf-dataset", str(saved), "--out", str(mapped), "--split-map", "validation=valid") == 2
    assert "unknown split 'valid'; the dataset has train, dev, test" in capsys.readouterr().err


def test_bad_datasets_are_clear_errors(demo_data, tmp_path, capsys):
    rows = _rows(demo_data)[:6]
    data = _audio_dataset(rows)
    saved = tmp_path / "saved"
    data.save_to_disk(str(saved))
    out = str(tmp_path / "out")

    cases = [
        (["--text-column", "sentence"], f"--hf-dataset {saved} split train: no column 'sentence'"),
        (["--audio-column", "text"], "column 'text' is Value('string'), not Audio"),
        (["--text-column", "audio"], "column 'audio' is Audio("),
        (["--config", "zh"], "--config applies to load_dataset"),
        (
            ["--split-map", "train=train,eval=test"],
            "--split-map: 'eval' is not one of train, validation, test",
        ),
    ]
    for extra, message in cases:
        assert _prepare("--hf-dataset", str(saved), "--out", out, *extra) == 2
        assert message in capsys.readouterr().err

    other = tmp_path / "other"
    datasets.DatasetDict({"train": data, "other": data}).save_to_disk(str(other))
    assert _prepare("--hf-dataset", str(other), "--out", out) == 2
    assert "dataset split 'other' is not train/validation/test" in capsys.readouterr().err
    assert _prepare("--hf-dataset", str(tmp_path / "missing" / "x"), "--out", out) == 2
    assert "cannot load it" in capsys.readouterr().err


def test_undecodable_and_missing_clips_are_suspects(demo_data, tmp_path):
    rows = _rows(demo_data)[:6]
    audio = [{"bytes": Path(u.audio).read_bytes(), "path": Path(u.audio).name} for u in rows]
    audio[1] = {"bytes": b"<html>not audio</html>", "path": "page.wav"}
    audio[2] = None  # save_to_disk embeds local files, so a clip without audio stands for a lost one
    data = datasets.Dataset.from_dict(
        {"id": [u.id for u in rows], "audio": audio, "text": [u.text for u in rows]}
    )
    saved = tmp_path / "saved"
    data.cast_column("audio", datasets.Audio()).save_to_disk(str(saved))

    out = tmp_path / "out"
    assert _prepare("--hf-dataset", str(saved), "--out", str(out), "--protocol", "random") == 0
    assert sorted(u.id for u in _rows(out)) == sorted(u.id for i, u in enumerate(rows) if i not in (1, 2))
    with (out / "reports" / "suspects.csv").open(encoding="utf-8", newline="") as handle:
        suspects = {row["id"]: row for row in csv.DictReader(handle)}
    assert suspects[rows[1].id]["problem"] == "unreadable_audio"
    assert "text, not audio" in suspects[rows[1].id]["detail"]
    assert suspects[rows[2].id]["problem"] == "missing_audio"


def test_push_needs_the_licence_flag_and_is_private(demo_data, tmp_path, monkeypatch, capsys):
    pushed = []
    monkeypatch.setattr(
        datasets.DatasetDict, "push_to_hub", lambda self, repo, **kw: pushed.append((repo, kw))
    )
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    args = ["--data-root", str(demo_data), "--out", str(tmp_path / "o"), "--to-hf", str(tmp_path / "hf")]

    assert _prepare(*args, "--push-to-hub", "me/cs-mage") == 2
    assert "--accept-cs-mage-license" in capsys.readouterr().err and not pushed
    assert _prepare(*args, "--push-to-hub", "not a repo", "--accept-cs-mage-license") == 2
    assert _prepare(*args[:4], "--push-to-hub", "me/cs-mage") == 2  # --push-to-hub needs --to-hf

    assert _prepare(*args, "--push-to-hub", "me/cs-mage", "--accept-cs-mage-license") == 0
    assert pushed == [("me/cs-mage", {"private": True, "token": "hf_secret"})]
    assert "pushed http://127.0.0.1:9/datasets/me/cs-mage" in capsys.readouterr().out


def test_to_hf_with_an_empty_split_loads_back_and_overlap_is_refused(demo_data, tmp_path, capsys):
    """issue 21: an empty split gave a DatasetDict load_from_disk cannot read (IndexError), and
    --out inside --to-hf deleted the manifests it had just reported writing."""
    from asr.data.hf_export import write_hf_dataset

    hf_dir = tmp_path / "hf"
    utts = read_manifest(demo_data / "manifests" / "train.jsonl")[:3]
    write_hf_dataset({"train": utts, "validation": utts[:1], "test": []}, hf_dir)
    loaded = datasets.load_from_disk(str(hf_dir))
    assert sorted(loaded) == ["train", "validation"] and len(loaded["train"]) == 3
    assert (
        _prepare("--data-root", str(demo_data), "--out", str(hf_dir / "prepared"), "--to-hf", str(hf_dir))
        == 2
    )
    assert "overlap" in capsys.readouterr().err
    assert sorted(datasets.load_from_disk(str(hf_dir))) == ["train", "validation"]
    assert not (hf_dir / "prepared").exists()
