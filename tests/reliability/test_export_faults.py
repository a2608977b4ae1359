"""``asr export`` given a run folder instead of a checkpoint, unusable ``--out`` paths, and what a
killed export left behind (its staging folder, the previous export moved aside)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from asr.cli import main
from asr.export import run as export_run
from tests.unit.export.test_card import write_run

pytestmark = pytest.mark.e2e


def _export(checkpoint: Path, out: Path, *extra: str) -> int:
    return main(["export", "--checkpoint", str(checkpoint), "--out", str(out), *extra])


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading or copying weights fail loudly: the errors below must come before any of it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the export did work before refusing")

    monkeypatch.setattr(export_run, "export_merged", refuse)
    monkeypatch.setattr(export_run, "export_adapter", refuse)


# --- a run folder is not a checkpoint -----------------------------------------------------------


def test_a_run_folder_points_at_its_best_checkpoint(tmp_path, capsys, monkeypatch) -> None:
    _no_work(monkeypatch)
    run = write_run(tmp_path / "whisper-base-lora")  # summary.json, config.yaml, train_log.jsonl ...
    (run / "best").mkdir()
    (run / "checkpoint-200").mkdir()
    assert _export(run, tmp_path / "export") == 2
    err = capsys.readouterr().err
    assert f"{run} is a fine-tuning run folder, not a checkpoint: pass --checkpoint {run / 'best'}" in err
    assert "model.safetensors" not in err and "Traceback" not in err
    assert not (tmp_path / "export").exists()


def test_an_unfinished_run_folder_says_how_to_finish_it(tmp_path, capsys, monkeypatch) -> None:
    _no_work(monkeypatch)
    run = write_run(tmp_path / "run", summary=None, metrics=None)  # config.yaml + train_log.jsonl
    for step in (100, 200, 50):
        (run / f"checkpoint-{step}").mkdir()
    assert _export(run, tmp_path / "export") == 2
    err = capsys.readouterr().err
    assert "is a fine-tuning run folder, not a checkpoint, and has no best/ yet" in err
    assert "checkpoint-200" in err and "--resume" in err and str(run / "best") in err


def test_a_run_folder_without_checkpoints(tmp_path, capsys, monkeypatch) -> None:
    _no_work(monkeypatch)
    run = write_run(tmp_path / "run")
    assert _export(run, tmp_path / "export") == 2
    assert "is a fine-tuning run folder, not a checkpoint, and holds no best/" in capsys.readouterr().err


def test_a_checkpoint_with_run_records_beside_its_weights_is_still_a_checkpoint(
    tiny_whisper, tmp_path
) -> None:
    # the checkpoint's own files decide: its marker and weights win over a summary.json or best/
    from asr.export.merge import inspect_checkpoint

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    for src in tiny_whisper.iterdir():
        (checkpoint / src.name).symlink_to(src)
    (checkpoint / "summary.json").write_text("{}", encoding="utf-8")
    (checkpoint / "best").mkdir()
    assert inspect_checkpoint(checkpoint).spec.family == "whisper"


# --- --out --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["file", "under_a_file", "unwritable"])
def test_unusable_out_is_a_clear_error_before_any_work(
    tiny_whisper, tmp_path, capsys, monkeypatch, kind
) -> None:
    _no_work(monkeypatch)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder", encoding="utf-8")
    if kind == "file":
        out = blocker
    elif kind == "under_a_file":
        out = blocker / "export"
    elif os.geteuid() == 0:  # root writes anywhere a permission bit forbids; /proc refuses new files
        out = Path("/proc/cs-mage-asr-export")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
        out = locked / "export"
    try:
        assert _export(tiny_whisper, out) == 2
    finally:
        if kind == "unwritable" and out.parent.parent == tmp_path:
            out.parent.chmod(0o700)
    err = capsys.readouterr().err
    assert f"--out {out}" in err and "Traceback" not in err
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    assert not list(tmp_path.glob(".*partial-*"))


# --- what a killed export leaves ----------------------------------------------------------------


def _files(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_leftovers_of_a_killed_export_are_tidied_and_the_previous_export_kept(
    tiny_whisper, tmp_path, capsys
) -> None:
    out = tmp_path / "export"
    assert _export(tiny_whisper, out) == 0
    first = _files(out)
    mode = stat.S_IMODE(out.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o777 & ~umask  # not mkdtemp's 0700: others may read the export

    # killed inside the replace: the previous export moved aside, its staging folder left behind
    (tmp_path / ".export.partial-dead1").mkdir()
    (tmp_path / ".export.partial-dead1" / "model.safetensors").write_bytes(b"half")
    out.rename(tmp_path / ".export.old")
    # a failing rerun (here: a run folder given) still puts the previous export back
    run = write_run(tmp_path / "run")
    (run / "best").mkdir()
    assert _export(run, out) == 2
    assert "pass --checkpoint" in capsys.readouterr().err
    assert _files(out) == first and not (tmp_path / ".export.old").exists()

    assert _export(tiny_whisper, out) == 0
    assert _files(out) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "run"]
    assert json.loads((out / "export_info.json").read_text(encoding="utf-8"))["mode"] == "merged"


def test_a_live_exports_staging_folder_is_left_alone(tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "export"
    live = tmp_path / ".export.partial-live"
    live.mkdir()
    holder = subprocess.Popen(  # another export, still running: it holds its staging folder's lock
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY); "
            "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)",
            str(live),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with export_run._staging_folder(out) as staging:
            assert staging.is_dir() and live.is_dir()
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".export.partial-live"]
    with export_run._staging_folder(out):  # its owner is gone now: the folder goes
        pass
    assert list(tmp_path.iterdir()) == []


# --- issue 21 ------------------------------------------------------------------------------------


def test_an_empty_push_to_hub_is_refused_before_any_work(tmp_path, capsys, monkeypatch) -> None:
    _no_work(monkeypatch)
    assert _export(tmp_path / "ckpt", tmp_path / "export", "--push-to-hub", "") == 2
    assert (
        "--push-to-hub needs USER/REPO (it was empty, so nothing would be pushed)" in capsys.readouterr().err
    )
    assert not (tmp_path / "export").exists()


def test_an_out_inside_the_checkpoint_creates_nothing_there(tmp_path, capsys, monkeypatch) -> None:
    _no_work(monkeypatch)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    assert _export(ckpt, ckpt / "sub" / "export") == 2
    assert "overlaps the checkpoint" in capsys.readouterr().err
    assert list(ckpt.iterdir()) == []
