"""Every command that writes, on a real full disk and on a read-only folder (issue 21).

Each ends in one ``error:`` line naming the path and the reason, exit status 2, no traceback;
a tmpfs of a few kilobytes is the full disk (root only: skipped elsewhere).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from asr.cli import main
from tests.e2e.conftest import DEMO
from tests.longform_media import demo_clips, join, write_media

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rec = join(demo_clips(3), pauses=[1.0], noise=0.01)
    return write_media(tmp_path_factory.mktemp("rec") / "talk.mp4", rec.audio, video=False)


@pytest.fixture(scope="module")
def finished_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two evaluation folders for ``asr report`` (synthetic, no model)."""
    from tests.report_fixtures import HYPS_A, HYPS_B, write_data, write_eval

    root = tmp_path_factory.mktemp("runs")
    data = write_data(root / "data", clips=False)
    write_eval(root / "runs" / "a", HYPS_A, data)
    write_eval(root / "runs" / "b", HYPS_B, data, checkpoint="/x/best")
    return root / "runs"


@pytest.fixture(scope="module")
def sources(tiny_whisper, tiny_ct2, demo_data, few_clips, recording, finished_runs) -> dict[str, Path]:
    return {"model": tiny_whisper, "ct2": tiny_ct2, "data": demo_data, "clips": few_clips, "recording": recording,
            "runs": finished_runs}  # fmt: skip


def _commands(name: str, out: Path, src: dict[str, Path]) -> list[str]:
    manifest = src["data"] / "manifests" / "test.jsonl"
    model = ["--model", str(src["model"]), "--no-progress"]
    return {
        "prepare": ["prepare", "--data-root", str(DEMO), "--out", str(out / "prepared")],
        "score": ["score", "--predictions", str(src["runs"] / "a" / "predictions.csv"),
                  "--out", str(out / "scored" / "metrics.json"), "--bootstrap", "0"],
        "finetune": ["finetune", f"model={src['model']}", f"data={src['clips']}", f"output_dir={out / 'run'}",
                     "method=lora", "lora.r=4", "num_workers=0", "zero_shot=false", "report_to=[]"],
        "evaluate": ["evaluate", *model, "--manifest", str(manifest), "--out", str(out / "eval"), "--limit", "4",
                     "--bootstrap", "0"],
        "zero-shot": ["zero-shot", "--models", str(src["model"]), "--manifest", str(manifest),
                      "--out", str(out / "zero-shot"), "--limit", "2", "--no-progress"],
        "benchmark": ["benchmark", "--data", str(src["data"]), "--out", str(out / "benchmark"),
                      "--models", str(src["model"]), "--finetune", "--limit", "2", "--no-progress"],
        "import-ct2": ["import-ct2", str(src["ct2"]), str(out / "imported")],
        "export": ["export", "--checkpoint", str(src["model"]), "--out", str(out / "export")],
        "report": ["report", str(src["runs"]), "--out", str(out / "report"), "--bootstrap", "0", "--no-plots"],
        "transcribe": ["transcribe", str(src["recording"]), *model, "--out", str(out / "subs")],
        "segment": ["segment", str(src["recording"]), *model, "--out", str(out / "corpus")],
    }[name]  # fmt: skip


# `asr models` only reads; a disk that fills mid-checkpoint is in test_train_faults.py
COMMANDS = ("prepare", "score", "finetune", "evaluate", "zero-shot", "benchmark", "import-ct2", "export", "report",
            "transcribe", "segment")  # fmt: skip


def _error_line(err: str) -> str:
    assert "Traceback" not in err
    return next(x for x in err.splitlines() if x.startswith("error:"))


@pytest.mark.parametrize("command", COMMANDS)
def test_a_full_disk_is_one_error_line(command, small_disk, sources, capsys) -> None:
    disk = small_disk(kb=64, full=True)
    code = main(_commands(command, disk, sources))
    err = capsys.readouterr().err
    line = _error_line(err)
    assert code == 2, err
    # prepare measures the zip against the free space before extracting: refused up front
    assert str(disk) in line and ("no space left on device" in line.lower() or "free space" in line), line
    assert _partial(disk) == []


def _partial(folder: Path) -> list[str]:
    """Temp files and staging folders a failed write left (they would fill the disk again, or block)."""
    return [
        p.name
        for p in folder.rglob("*")
        if p.name.endswith((".tmp", ".partial", ".old")) or ".partial-" in p.name
    ]


def test_import_ct2_runs_out_of_space_mid_write(small_disk, tiny_ct2, capsys) -> None:
    """A disk that fills while the weights are written (4 MB for 14 MB): one error line, no staging left."""
    disk = small_disk(kb=4096)
    assert main(["import-ct2", str(tiny_ct2), str(disk / "imported")]) == 2
    line = _error_line(capsys.readouterr().err)
    assert str(disk) in line and "no space left on device" in line, line
    assert _partial(disk) == [] and not (disk / "imported").exists()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_read_only_output_is_one_error_line(command, small_disk, sources, capsys) -> None:
    disk = small_disk(kb=64, read_only=True)
    code = main(_commands(command, disk, sources))
    err = capsys.readouterr().err
    line = _error_line(err)
    assert code == 2, err
    assert str(disk) in line and "read-only" in line.lower(), line


def test_a_truncated_safetensors_file_is_named(tiny_whisper, demo_data, tmp_path, capsys) -> None:
    broken = tmp_path / "model"
    shutil.copytree(tiny_whisper, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    for argv in (
        ["evaluate", "--model", str(broken), "--manifest", str(demo_data / "manifests" / "test.jsonl"),
         "--out", str(tmp_path / "eval"), "--limit", "2"],
        ["export", "--checkpoint", str(broken), "--out", str(tmp_path / "export")],
    ):  # fmt: skip
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{weights} is cut short (its tensors end past the end of the file)" in err, err
        assert "Traceback" not in err


def test_finetune_checks_its_output_dir_before_loading_the_model(
    small_disk, tmp_path, capsys, monkeypatch
) -> None:
    import asr.train.recipe as recipe

    def refuse(*args, **kwargs):
        raise AssertionError("the model loaded before the output folder was checked")

    monkeypatch.setattr(recipe, "load_splits", lambda cfg: recipe.Splits([], [], [], []))
    monkeypatch.setattr(recipe.FinetuneRecipe, "_setup_model", refuse)
    config = str(Path(__file__).resolve().parents[2] / "configs" / "whisper-base-lora.yaml")
    read_only = small_disk(kb=64, read_only=True)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for out, problem in ((read_only / "run", "cannot write there"), (a_file, "exists and is not a folder")):
        assert main(["finetune", "--config", config, f"output_dir={out}", f"data={tmp_path}"]) == 2
        err = capsys.readouterr().err
        assert f"output_dir {out}: {problem}" in err and "Traceback" not in err


def test_report_checks_its_out_before_reading_runs(small_disk, tmp_path, capsys) -> None:
    read_only = small_disk(kb=64, read_only=True)
    assert main(["report", str(tmp_path), "--out", str(read_only / "report")]) == 2
    err = capsys.readouterr().err
    assert f"--out {read_only / 'report'}: cannot write there" in err and "Traceback" not in err


def test_import_ct2_checks_its_output_before_reading_the_source(small_disk, tmp_path, capsys) -> None:
    read_only = small_disk(kb=64, read_only=True)
    assert main(["import-ct2", str(tmp_path / "no-such-model"), str(read_only / "imported")]) == 2
    err = capsys.readouterr().err  # was: converted for minutes, then failed writing the staging folder
    assert f"OUT's folder {read_only}: cannot write there" in err and "Traceback" not in err
