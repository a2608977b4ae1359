"""``asr prepare`` against hostile input: bad samples, absurd clips, stale or hostile zips,
undecodable text, failed runs and unusable output folders.

Single bad items become rows of suspects.csv and are left out; whole-run problems are one
``error: ...`` line and exit status 2, never a traceback, and never destroy earlier output.
"""

from __future__ import annotations

import csv
import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data import csmage, validate
from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.data.prepare import prepare
from asr.errors import ASRError, DataError
from tests.conftest import build_csmage, write_wav

# Helpers ----------------------------------------------------------------------------------


def _suspects(out: Path) -> list[dict[str, str]]:
    with (out / "reports" / "suspects.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _problems(out: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for row in _suspects(out):
        found.setdefault(row["id"], set()).add(row["problem"])
    return found


def _ids(out: Path) -> list[str]:
    return [u.id for u in read_manifest(out / "manifests" / "all.jsonl")]


def _manifests(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "manifests").iterdir())}


def _float_wav(path: Path, samples: np.ndarray, sample_rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype="FLOAT")
    return path


def _tone(seconds: float = 1.0, sample_rate: int = 16000) -> np.ndarray:
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def _kaldi(root: Path, rows: dict[str, tuple[Path, str]]) -> Path:
    """``wav.scp`` + ``text`` for ``{utt: (wav, text)}``; three good clips are added."""
    root.mkdir(parents=True, exist_ok=True)
    rows = dict(rows)
    for index, text in enumerate(("长沙的米粉", "岳麓山好高", "臭豆腐蛮香")):
        rows[f"good{index}"] = (write_wav(root / f"good{index}.wav", 1.0, freq=200.0 + 20 * index), text)
    (root / "wav.scp").write_text("".join(f"{u} {w}\n" for u, (w, _) in rows.items()), encoding="utf-8")
    (root / "text").write_text("".join(f"{u} {t}\n" for u, (_, t) in rows.items()), encoding="utf-8")
    return root


GOOD = ["good0", "good1", "good2"]


def test_a_wav_scp_symlink_loop_is_a_suspect(tmp_path: Path) -> None:
    """A wav.scp entry that is a symlink loop aborted prepare with a RuntimeError (issue 21)."""
    loop = tmp_path / "kaldi" / "loop.wav"
    loop.parent.mkdir(parents=True)
    loop.symlink_to(loop.name)
    root = _kaldi(tmp_path / "kaldi", {"looped": (loop, "长沙话")})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert _ids(out) == sorted(GOOD)
    row = next(r for r in _suspects(out) if r["id"] == "looped")
    assert row["file"] == str(loop), row


def _wav_bytes(samples: np.ndarray, subtype: str = "PCM_16") -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, 16000, subtype=subtype, format="WAV")
    return buffer.getvalue()


def _csmage_zip(root: Path, members: dict[str, bytes], texts: dict[str, str] | None = None) -> Path:
    """A CS-Mage folder: ``audio_wav.zip`` with ``members`` (``VV_CCCC`` -> bytes) and its pkl."""
    root.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(root / "audio_wav.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for stem, data in members.items():
            archive.writestr(f"audio_wav/{stem}.wav", data)
    texts = texts or {}
    ids = [csmage.to_video_id(stem) for stem in members]
    data = {"id": ids, "raw_text": [texts.get(i, "长沙的米粉好吃") for i in ids]}
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps(data, protocol=4))
    return root


def _patch_member(zip_path: Path, name: str, *, flag_bits: int = 0, method: int | None = None) -> None:
    """Rewrite the general-purpose flags / compression method of one member in place."""
    data = bytearray(zip_path.read_bytes())
    encoded = name.encode()
    # (signature, offset of the name length, of the name, of the flags, of the method)
    for signature, length_at, name_at, flag_at, method_at in (
        (b"PK\x03\x04", 26, 30, 6, 8),  # local file header
        (b"PK\x01\x02", 28, 46, 8, 10),  # central directory entry
    ):
        start = data.find(signature)
        while start >= 0:
            (length,) = struct.unpack_from("<H", data, start + length_at)
            if bytes(data[start + name_at : start + name_at + length]) == encoded:
                (flags,) = struct.unpack_from("<H", data, start + flag_at)
                struct.pack_into("<H", data, start + flag_at, flags | flag_bits)
                if method is not None:
                    struct.pack_into("<H", data, start + method_at, method)
            start = data.find(signature, start + 4)
    zip_path.write_bytes(bytes(data))


def _cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["prepare", *args])
    return code, capsys.readouterr().err


# 1. Non-finite audio ------------------------------------------------------------------------


def test_non_finite_samples_are_a_suspect_and_left_out(tmp_path: Path, capsys) -> None:
    nan = _tone()
    nan[1000] = np.nan
    inf = _tone()
    inf[-1] = np.inf
    nan_8k = _tone(sample_rate=8000)  # needs conversion: the check happens before resampling
    nan_8k[:10] = np.nan
    root = _kaldi(
        tmp_path / "kaldi",
        {
            "nan": (_float_wav(tmp_path / "kaldi" / "nan.wav", nan), "今天天气蛮好咯"),
            "inf": (_float_wav(tmp_path / "kaldi" / "inf.wav", inf), "你吃饭了冒"),
            "nan8k": (_float_wav(tmp_path / "kaldi" / "nan8k.wav", nan_8k, 8000), "我们去长沙"),
            "fine": (_float_wav(tmp_path / "kaldi" / "fine.wav", _tone()), "湘江边上散步"),
        },
    )
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert sorted(_ids(out)) == sorted([*GOOD, "fine"])
    problems = _problems(out)
    for utt in ("nan", "inf", "nan8k"):
        assert "non_finite_audio" in problems[utt]
    detail = next(r["detail"] for r in _suspects(out) if r["id"] == "nan")
    assert "nan.wav" in detail and "not finite" in detail
    assert not (out / "audio" / "converted" / "nan8k.wav").exists()


def test_load_audio_refuses_non_finite_samples(tmp_path: Path) -> None:
    samples = _tone()
    samples[5] = np.nan
    with pytest.raises(DataError, match=r"bad\.wav: 1 of 16000 samples are not finite"):
        load_audio(_float_wav(tmp_path / "bad.wav", samples))


def test_non_finite_zip_member_is_a_suspect_and_not_left_on_disk(tmp_path: Path) -> None:
    bad = _tone()
    bad[100:200] = np.inf
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(bad, "FLOAT")})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert _ids(out) == ["video_1_1"]
    assert _problems(out)["video_1_2"] == {"non_finite_audio"}
    assert not (out / "audio" / "01_0002.wav").exists()


# 2. Minimum duration --------------------------------------------------------------------------


def test_absurdly_short_clips_are_a_suspect_and_left_out(tmp_path: Path) -> None:
    kaldi = tmp_path / "kaldi"
    one = kaldi / "one.wav"
    one.parent.mkdir(parents=True)
    sf.write(str(one), np.array([0.1], dtype=np.float32), 16000, subtype="PCM_16")
    empty = kaldi / "empty.wav"
    sf.write(str(empty), np.zeros(0, dtype=np.float32), 16000, subtype="PCM_16")
    root = _kaldi(
        kaldi,
        {
            "one": (one, "好"),
            "empty": (empty, "好"),
            "short": (write_wav(kaldi / "short.wav", validate.MIN_DURATION / 2), "好"),
            "limit": (write_wav(kaldi / "limit.wav", validate.MIN_DURATION), "好"),
        },
    )
    out = tmp_path / "out"
    prepare(root, out, protocol="random", ratios="1:1:1")
    assert sorted(_ids(out)) == sorted([*GOOD, "limit"])
    problems = _problems(out)
    assert {u for u, p in problems.items() if "too_short" in p} == {"one", "empty", "short"}
    detail = next(r["detail"] for r in _suspects(out) if r["id"] == "one")
    assert "0.0000625 s" in detail and f"{validate.MIN_DURATION}" in detail
    assert 0.05 <= validate.MIN_DURATION <= 0.5


# 3. Stale audio -------------------------------------------------------------------------------


def test_a_replaced_zip_member_is_extracted_again(tmp_path: Path) -> None:
    first = _wav_bytes(_tone())
    second = _wav_bytes(_tone()[::-1].copy())
    assert len(first) == len(second) and first != second
    root = _csmage_zip(tmp_path / "cs", {"01_0001": first})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    target = out / "audio" / "01_0001.wav"
    assert target.read_bytes() == first
    stamp = target.stat().st_mtime_ns
    prepare(root, out, protocol="random")
    assert target.stat().st_mtime_ns == stamp  # unchanged member: not extracted again

    _csmage_zip(root, {"01_0001": second})  # same name, same size, new content
    prepare(root, out, protocol="random")
    assert target.read_bytes() == second


# 4. Zip bombs ---------------------------------------------------------------------------------


def test_zip_member_size_cap_has_a_sensible_default(monkeypatch) -> None:
    monkeypatch.delenv(csmage.MAX_MEMBER_BYTES_ENV, raising=False)
    assert csmage.member_size_limit() == csmage.MAX_MEMBER_BYTES == 64 * 1024 * 1024
    monkeypatch.setenv(csmage.MAX_MEMBER_BYTES_ENV, "1000")
    assert csmage.member_size_limit() == 1000
    monkeypatch.setenv(csmage.MAX_MEMBER_BYTES_ENV, "lots")
    with pytest.raises(ASRError, match=csmage.MAX_MEMBER_BYTES_ENV):
        csmage.member_size_limit()


def test_an_oversized_zip_member_is_refused_without_extracting(tmp_path: Path, monkeypatch) -> None:
    good = _wav_bytes(_tone())
    bomb = _wav_bytes(np.zeros(16000 * 20, dtype=np.float32))  # 640 kB that deflates to almost nothing
    root = _csmage_zip(tmp_path / "cs", {"01_0001": good, "01_0002": bomb})
    assert (root / "audio_wav.zip").stat().st_size < 20_000
    monkeypatch.setenv(csmage.MAX_MEMBER_BYTES_ENV, str(200_000))
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert _ids(out) == ["video_1_1"]
    row = next(r for r in _suspects(out) if r["id"] == "video_1_2")
    assert row["problem"] == "too_large" and row["file"].endswith("audio_wav.zip:audio_wav/01_0002.wav")
    assert "200000" in row["detail"] and csmage.MAX_MEMBER_BYTES_ENV in row["detail"]
    assert not (out / "audio" / "01_0002.wav").exists()
    # the keyword overrides the environment
    result = csmage.read_csmage(root, tmp_path / "audio2", max_member_bytes=10**7)
    assert [c.id for c in result.candidates] == ["video_1_1", "video_1_2"]


def test_many_members_under_the_cap_that_expand_past_the_ratio_are_refused(
    tmp_path: Path, monkeypatch
) -> None:
    """Twelve members of silence, each under the per-member cap, each expanding ~1000:1."""
    silence = _wav_bytes(np.zeros(16000 * 60, dtype=np.float32))  # 1.9 MB that deflates ~1000:1
    members = {f"01_{n:04d}": silence for n in range(2, 14)}
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), **members})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")  # each silent member is a suspect, none is extracted
    rows = _suspects(out)
    assert len(rows) == 12 and {r["problem"] for r in rows} == {"too_large"}
    assert "over 100:1; not extracted" in rows[0]["detail"]
    assert [p.name for p in (out / "audio").glob("*.wav")] == ["01_0001.wav"]
    # past ZIP_BOMB_MIN_BYTES in all, the whole archive is refused before anything is written
    monkeypatch.setattr(csmage, "ZIP_BOMB_MIN_BYTES", 1024**2)
    with pytest.raises(
        DataError, match=r"audio_wav\.zip: its audio would expand \d+:1 .* over 100:1; nothing"
    ):
        csmage.read_csmage(root, tmp_path / "audio")
    assert not (tmp_path / "audio").exists()


def test_a_zip_larger_than_the_total_budget_is_refused_before_extracting(tmp_path: Path, monkeypatch) -> None:
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(_tone())})
    monkeypatch.setattr(csmage, "MAX_TOTAL_BYTES", 50_000)
    with pytest.raises(DataError, match="its audio expands to 64088 bytes, more than the 50000 bytes"):
        csmage.read_csmage(root, tmp_path / "audio")
    assert not (tmp_path / "audio").exists() or not list((tmp_path / "audio").iterdir())


def test_extraction_past_the_budget_removes_what_it_extracted(tmp_path: Path, monkeypatch) -> None:
    """A directory that understates sizes is caught while reading; nothing of this run stays."""
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(_tone())})
    spend = csmage._ExtractBudget.spend

    def small_limit(self, size: int) -> None:
        self.limit = 40_000  # as if the second member turned out far larger than its entry says
        spend(self, size)

    monkeypatch.setattr(csmage._ExtractBudget, "spend", small_limit)
    audio = tmp_path / "audio"
    with pytest.raises(DataError, match="extracting yields more than the 40000 bytes allowed"):
        csmage.read_csmage(root, audio)
    assert list(audio.iterdir()) == []


def test_an_unreadable_zip_member_does_not_stay_on_disk(tmp_path: Path) -> None:
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), "01_0002": b"\x00" * 300_000})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert _problems(out)["video_1_2"] == {"unreadable_audio"}
    assert sorted(p.name for p in (out / "audio").iterdir()) == ["01_0001.wav"]


# 5. One bad item must not abort the run -------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "expected"),
    [({"flag_bits": 0x1}, "encrypted"), ({"method": 9}, "compression method 9 (deflate64)")],
    ids=["encrypted", "deflate64"],
)
def test_a_bad_zip_member_is_a_suspect(tmp_path: Path, capsys, patch, expected) -> None:
    root = _csmage_zip(tmp_path / "cs", {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(_tone())})
    _patch_member(root / "audio_wav.zip", "audio_wav/01_0002.wav", **patch)
    out = tmp_path / "out"
    code, err = _cli(["--data-root", str(root), "--out", str(out), "--protocol", "random"], capsys)
    assert code == 0, err
    assert _ids(out) == ["video_1_1"]
    row = next(r for r in _suspects(out) if r["id"] == "video_1_2")
    assert row["problem"] == "unreadable_audio" and expected in row["detail"]
    assert not (out / "audio" / "01_0002.wav").exists()


def test_a_lone_surrogate_in_a_transcript_is_a_suspect(tmp_path: Path, capsys) -> None:
    root = _csmage_zip(
        tmp_path / "cs",
        {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(_tone())},
        texts={"video_1_2": "好\ud800咯"},
    )
    out = tmp_path / "out"
    code, err = _cli(["--data-root", str(root), "--out", str(out), "--protocol", "random"], capsys)
    assert code == 0 and "Traceback" not in err
    assert _ids(out) == ["video_1_1"]
    row = next(r for r in _suspects(out) if r["id"] == "video_1_2")
    assert row["problem"] == "invalid_text" and "U+D800" in row["detail"]


def test_a_lone_surrogate_in_an_id_is_a_suspect(tmp_path: Path) -> None:
    root = tmp_path / "cs"
    root.mkdir()
    (root / "audio_wav").mkdir()
    write_wav(root / "audio_wav" / "01_0001.wav")
    data = {"id": ["video_1_1", "bad\udc80id"], "raw_text": ["长沙的米粉", "岳麓山好高"]}
    (root / "CS-Mage_fulldata.pkl").write_bytes(pickle.dumps(data, protocol=4))
    out = tmp_path / "out"
    prepare(root, out, protocol="random")  # the suspects file must still be writable
    assert _ids(out) == ["video_1_1"]
    assert any("\\udc80" in r["id"] for r in _suspects(out))


def test_a_split_csv_that_is_not_utf8_is_a_clear_error(tmp_path: Path, capsys) -> None:
    corpus = build_csmage(tmp_path / "cs")
    splits = tmp_path / "splits"
    splits.mkdir()
    for name, utt in (("train", "video_1_1"), ("validation", "video_2_2")):
        (splits / f"{name}.csv").write_text(f"sample_id,split\n{utt},{name}\n", encoding="utf-8")
    (splits / "test.csv").write_bytes("sample_id,split,备注\nvideo_3_2,test,长沙话\n".encode("gbk"))
    out = tmp_path / "out"
    args = ["--data-root", str(corpus.root), "--out", str(out), "--split-files", str(splits)]
    code, err = _cli(args, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: ") and "test.csv: not UTF-8" in err and "line 1" in err
    assert "GB18030" in err
    assert not (out / "manifests").exists() and not (out / "reports").exists()


# 6. Non-UTF-8 transcripts ---------------------------------------------------------------------


@pytest.mark.parametrize(("encoding", "named"), [("gbk", "GB18030"), ("big5", "Big5")])
def test_a_transcript_file_that_is_not_utf8_names_line_and_likely_encoding(
    tmp_path: Path, encoding: str, named: str
) -> None:
    root = _kaldi(tmp_path / "kaldi", {})
    (root / "text").write_bytes("good0 長沙的米粉\ngood1 嶽麓山好高\ngood2 臭豆腐蠻香\n".encode(encoding))
    with pytest.raises(DataError) as err:
        prepare(root, tmp_path / "out", protocol="random")
    message = str(err.value)
    assert f"{root / 'text'}: not UTF-8" in message and "line 1" in message and "byte 6" in message
    assert f"looks like {named}" in message


def test_a_jsonl_file_that_is_not_utf8_names_line_and_likely_encoding(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "a.wav")
    lines = f'{{"key": "a", "source": "{wav}", "target": "ok"}}\n{{"key": "b", "source": "{wav}", "target": "长沙话"}}\n'
    path = tmp_path / "data.jsonl"
    path.write_bytes(lines.encode("gbk"))
    with pytest.raises(DataError, match=r"data\.jsonl: not UTF-8 .*line 2.*looks like GB18030"):
        prepare(path, tmp_path / "out", protocol="random")


def test_pkl_transcripts_as_non_utf8_bytes_are_suspects_not_mojibake(tmp_path: Path) -> None:
    root = _csmage_zip(
        tmp_path / "cs",
        {"01_0001": _wav_bytes(_tone()), "01_0002": _wav_bytes(_tone())},
        texts={"video_1_1": "长沙的米粉".encode(), "video_1_2": "岳麓山好高".encode("gbk")},  # type: ignore[dict-item]
    )
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    rows = read_manifest(out / "manifests" / "all.jsonl")
    assert [(u.id, u.text) for u in rows] == [("video_1_1", "长沙的米粉")]
    row = next(r for r in _suspects(out) if r["id"] == "video_1_2")
    assert row["problem"] == "invalid_text" and "not UTF-8" in row["detail"] and "GB18030" in row["detail"]
    assert "\ufffd" not in (out / "reports" / "suspects.csv").read_text(encoding="utf-8")


# 7. A failed run keeps earlier output ---------------------------------------------------------


def test_a_run_with_nothing_usable_keeps_the_earlier_manifests(tmp_path: Path, capsys) -> None:
    root = _kaldi(tmp_path / "kaldi", {})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    before = _manifests(out)
    assert len(read_manifest(out / "manifests" / "all.jsonl")) == 3
    for wav in root.glob("*.wav"):
        wav.unlink()
    code, err = _cli(["--data-root", str(root), "--out", str(out), "--protocol", "random"], capsys)
    assert code == 2 and "no usable utterances" in err and "Traceback" not in err
    assert _manifests(out) == before
    assert {r["problem"] for r in _suspects(out)} == {"missing_audio"}  # the reports show why


def test_a_run_that_fails_midway_writes_nothing(tmp_path: Path) -> None:
    corpus = build_csmage(tmp_path / "cs")
    out = tmp_path / "out"
    prepare(corpus.root, out, protocol="random")
    before = _manifests(out)
    reports = {p.name: p.read_bytes() for p in (out / "reports").iterdir()}
    splits = tmp_path / "splits"
    splits.mkdir()
    for name in ("train", "validation", "test"):
        (splits / f"{name}.csv").write_text("sample_id,split\nvideo_1_1,train\n", encoding="utf-8")
    (splits / "validation.csv").write_text("sample_id,split\nvideo_1_1,test\n", encoding="utf-8")  # conflict
    with pytest.raises(DataError, match="also listed as"):
        prepare(corpus.root, out, split_files=splits)
    assert _manifests(out) == before
    assert {p.name: p.read_bytes() for p in (out / "reports").iterdir()} == reports


# 8. Output folder errors ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_an_unusable_out_is_a_clear_error_before_any_reading(
    tmp_path: Path, capsys, monkeypatch, kind
) -> None:
    import asr.data.prepare as prepare_module

    corpus = build_csmage(tmp_path / "cs")
    blocker = tmp_path / "blocker"
    blocker.write_text("x", encoding="utf-8")
    out = blocker if kind == "file" else blocker / "out"

    def no_reading(*args, **kwargs):
        raise AssertionError("the corpus was read before --out was checked")

    monkeypatch.setattr(prepare_module, "read_corpus", no_reading)
    monkeypatch.setattr(prepare_module, "resolve_format", no_reading)
    code, err = _cli(["--data-root", str(corpus.root), "--out", str(out)], capsys)
    assert code == 2, err
    assert err.startswith("error: --out") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# 9. Useful reasons for unreadable audio -------------------------------------------------------


def test_unreadable_audio_says_why(tmp_path: Path, monkeypatch) -> None:
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    (kaldi / "empty.wav").write_bytes(b"")
    (kaldi / "html.wav").write_bytes(b"<!DOCTYPE html><html><body>404 Not Found</body></html>")
    (kaldi / "cut.wav").write_bytes(_wav_bytes(_tone())[:30])
    root = _kaldi(
        kaldi,
        {
            "empty": (kaldi / "empty.wav", "好"),
            "html": (kaldi / "html.wav", "好"),
            "cut": (kaldi / "cut.wav", "好"),
        },
    )
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    details = {r["id"]: r["detail"] for r in _suspects(out) if r["problem"] == "unreadable_audio"}
    assert set(details) == {"empty", "html", "cut"}
    for utt, detail in details.items():
        assert f"{utt}.wav: not a decodable audio file: " in detail
    assert "empty (0 bytes)" in details["empty"]
    assert "text" in details["html"]
    assert "WAV" in details["cut"] and "30 bytes" in details["cut"]


def test_libsndfile_system_error_is_replaced_by_a_useful_reason(tmp_path: Path, monkeypatch) -> None:
    # libsndfile answers some broken files with a bare "System error."
    kaldi = tmp_path / "kaldi"
    kaldi.mkdir()
    (kaldi / "odd.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(20))
    root = _kaldi(kaldi, {"odd": (kaldi / "odd.wav", "好")})
    real_info = sf.info

    def info(path, *args, **kwargs):
        if str(path).endswith("odd.wav"):
            raise sf.LibsndfileError(2, f"Error opening {path!r}: ")
        return real_info(path, *args, **kwargs)

    monkeypatch.setattr(sf, "info", info)
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    detail = next(r["detail"] for r in _suspects(out) if r["id"] == "odd")
    assert "odd.wav: not a decodable audio file: " in detail
    assert "System error" not in detail and "WAV" in detail and "36 bytes" in detail


def test_clips_past_the_whisper_window_are_reported_and_kept(tmp_path: Path) -> None:
    """prepare did not flag clips past 30 s; Whisper cut them without a word (issue 21)."""
    long = write_wav(tmp_path / "kaldi" / "long.wav", 31.5, freq=210.0)
    root = _kaldi(tmp_path / "kaldi", {"long": (long, "长沙话讲得蛮好" * 8)})
    out = tmp_path / "out"
    prepare(root, out, protocol="random")
    assert "long" in _ids(out)
    row = next(r for r in _suspects(out) if r["id"] == "long")
    assert row["problem"] == "longer_than_30s" and row["detail"].startswith(
        "31.5 s, longer than Whisper's 30 s"
    )
