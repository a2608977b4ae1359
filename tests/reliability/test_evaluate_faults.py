"""``asr evaluate`` under bad output paths and resumed runs whose settings changed."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.models.whisper.ct2 import installed

pytestmark = pytest.mark.e2e


def _evaluate(model: Path, manifest: Path, out: Path, *extra: str) -> int:
    argv = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    return main([*argv, "--limit", "4", "--batch-size", "4", "--no-progress", "--bootstrap", "0", *extra])


@pytest.fixture
def manifest(demo_data: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "test.jsonl"
    shutil.copyfile(demo_data / "manifests" / "test.jsonl", copy)
    return copy


def test_a_refused_call_does_not_rewrite_the_run_record(tiny_whisper, manifest, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    recorded = (out / "run.json").read_bytes()
    # without --resume the call is refused before it records anything ...
    assert _evaluate(tiny_whisper, manifest, out, "--beam-size", "2") == 2
    assert "pass --resume" in capsys.readouterr().err
    assert (out / "run.json").read_bytes() == recorded
    # ... so a later --resume with other decoding settings is still caught
    assert _evaluate(tiny_whisper, manifest, out, "--resume", "--beam-size", "2") == 2
    assert "beam_size" in capsys.readouterr().err
    assert _evaluate(tiny_whisper, manifest, out, "--resume") == 0


@pytest.mark.parametrize(
    ("change", "setting"),
    [(["--batch-size", "2"], "batch_size"), (["--no-guard"], "decoding"), (["--limit", "3"], "limit")],
)
def test_resume_refuses_every_setting_that_changes_predictions(
    tiny_whisper, manifest, tmp_path, capsys, change, setting
) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    capsys.readouterr()
    assert _evaluate(tiny_whisper, manifest, out, "--resume", *change) == 2
    assert setting in capsys.readouterr().err


def test_resume_refuses_a_changed_manifest(tiny_whisper, manifest, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    rows = manifest.read_text(encoding="utf-8").splitlines()
    first = json.loads(rows[0])
    first["text"] = "别的字"
    manifest.write_text(
        "\n".join([json.dumps(first, ensure_ascii=False), *rows[1:]]) + "\n", encoding="utf-8"
    )
    assert _evaluate(tiny_whisper, manifest, out, "--resume") == 2
    err = capsys.readouterr().err
    assert f"changed since {out} was decoded and 1 decoded rows no longer match it (e.g. {first['id']}" in err


def test_resume_accepts_a_manifest_that_only_lost_rows(tiny_whisper, manifest, tmp_path, caplog) -> None:
    """Dropping a clip that failed and resuming restarted the whole decode (issue 21)."""
    out = tmp_path / "run"
    rows = manifest.read_text(encoding="utf-8").splitlines()
    manifest.write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")  # a kill after 3 of 4 clips ...
    assert _evaluate(tiny_whisper, manifest, out) == 0
    (out / "metrics.json").unlink()
    decoded = (out / "predictions.csv").read_bytes()
    manifest.write_text("\n".join([rows[0], rows[2], rows[3]]) + "\n", encoding="utf-8")  # ... row 2 dropped
    with caplog.at_level("WARNING"):
        assert _evaluate(tiny_whisper, manifest, out, "--resume") == 0
    assert "2 decoded rows kept, 1 no longer in it left out, 1 to decode" in caplog.text
    ids = [json.loads(r)["id"] for r in (rows[0], rows[2], rows[3])]
    lines = (out / "predictions.csv").read_text(encoding="utf-8").splitlines()[1:]
    assert [line.split(",")[0] for line in lines] == ids
    assert (
        decoded.splitlines()[1] in (out / "predictions.csv").read_bytes().splitlines()
    )  # reused, not redone
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["manifest_sha256"] == hashlib.sha256(manifest.read_bytes()).hexdigest()


def test_settings_are_recorded(tiny_whisper, manifest, tmp_path) -> None:
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["schema"] == "eval_run_settings" and run["schema_version"] == 1
    assert run["dtype"] == "float32" and run["batch_size"] == 4 and len(run["manifest_sha256"]) == 64
    assert run["decoding"]["guard"] is True
    # --backend auto: CTranslate2 int8 on the CPU where it is installed, else the torch path
    chosen = {"backend": "ct2", "compute_type": "int8"} if installed() else {"backend": "torch"}
    assert {k: run["decoding"].get(k) for k in chosen} == chosen


@pytest.mark.parametrize("kind", ["file", "under_a_file"])
def test_unusable_out_is_a_clear_error_before_any_work(
    tiny_whisper, manifest, tmp_path, capsys, kind
) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    out = blocker if kind == "file" else blocker / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 2
    err = capsys.readouterr().err
    assert f"--out {out}" in err and "Traceback" not in err
    assert blocker.read_text(encoding="utf-8") == "not a folder"


def test_rows_without_duration_are_measured_from_the_audio(tiny_whisper, manifest, tmp_path) -> None:
    """``duration`` is optional in a manifest; it crashed the length sort (issue 21)."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines()]
    for row in rows[:2]:
        del row["duration"]
    manifest.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    assert _evaluate(tiny_whisper, manifest, out) == 0
    written = (out / "predictions.csv").read_text(encoding="utf-8")
    assert rows[0]["id"] in written and rows[1]["id"] in written


def test_a_clip_past_the_whisper_window_is_decoded_in_windows(
    tiny_whisper, demo_data, tmp_path, caplog
) -> None:
    """A 58 s clip whose speech sits at 35-38 s: Whisper saw its first 30 s only and predicted
    what it hallucinates on silence, without a word (issue 21). Now its windows with sound are
    decoded and joined, and the clip is named in a warning."""
    from unittest import mock

    import soundfile as sf

    from asr.data.audio import load_audio
    from asr.data.manifest import read_manifest, write_manifest
    from asr.models.whisper.model import WhisperASR

    utt = read_manifest(demo_data / "manifests" / "test.jsonl")[0]
    speech = load_audio(utt.audio)
    long = np.zeros(16000 * 58, dtype=np.float32)
    long[16000 * 35 : 16000 * 35 + speech.size] = speech
    path = tmp_path / "long.wav"
    sf.write(path, long, 16000)
    utt.audio, utt.duration = str(path), 58.0
    manifest = tmp_path / "long.jsonl"
    write_manifest(manifest, [utt])
    seen: list[float] = []
    real = WhisperASR.transcribe

    def spy(self, waves, options, durations=None):
        seen.extend(len(w) / 16000 for w in waves)
        return real(self, waves, options, durations)

    with mock.patch.object(WhisperASR, "transcribe", spy), caplog.at_level("WARNING"):
        assert _evaluate(tiny_whisper, manifest, tmp_path / "run") == 0
    assert len(seen) == 1 and 28.0 < seen[0] <= 30.0  # the silent first window is not decoded
    assert f"{utt.id}: 58.0 s, longer than the model's 30 s window: decoded in 2 windows" in caplog.text
