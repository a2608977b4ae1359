"""kill -9 fault matrix: ``asr prepare``, ``asr evaluate`` and ``asr export`` killed partway, then rerun.

Each command runs as its own process and is killed with SIGKILL: nothing of it runs after the
signal (no ``finally``, no atexit), as after an OOM kill or a pulled plug. Two ways to kill:

- from outside, as soon as a sign of progress appears on disk (``_kill_when``); a command that
  finishes first is simply rerun, and the comparison still holds;
- from inside, at an exact point (``_killed_at``): a small harness wraps the command and sends
  itself SIGKILL just before a named file is renamed into place (the last step of every atomic
  write), after N durable batches of predictions, or halfway through writing a row.

The rerun (``--resume`` for evaluate) must give exactly what an uninterrupted run gives (timings
and provenance aside) and leave nothing partial behind: no ``*.tmp`` files, no ``.partial-``
staging folders.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from asr.cli import main
from tests.e2e.conftest import DEMO, REPO
from tests.e2e.test_export import TOKEN
from tests.e2e.test_finetune import _losses
from tests.unit.export.test_card import write_run

# the in-process reference runs decode with one thread, as the subprocesses (OMP_NUM_THREADS=1)
pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

ENV = {
    **os.environ,
    "PYTHONHASHSEED": "0",
    "CUDA_VISIBLE_DEVICES": "",
    "OMP_NUM_THREADS": "1",  # as the in-process reference runs (see one_thread); also 40x faster here
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}
EVAL_ARGS = ("--limit", "8", "--batch-size", "2", "--bootstrap", "0", "--no-progress")

# Runs asr.cli as __main__ and SIGKILLs itself at the point named by $ASR_KILL_AT:
#   rename:NAME  just before a file or folder named NAME is renamed into place (os.replace/os.rename)
#   batch:N      once N batches of predictions are durable
#   torn:N       in batch N+1, after writing half of its first row (flushed and fsynced)
HARNESS = r"""
import csv, io, os, runpy, signal, sys
kind, _, arg = os.environ.pop("ASR_KILL_AT").partition(":")

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if kind == "rename":
    for name in ("replace", "rename"):
        def hooked(src, dst, *a, _real=getattr(os, name), **k):
            if os.path.basename(os.fspath(dst)) == arg:
                die()
            return _real(src, dst, *a, **k)
        setattr(os, name, hooked)
else:
    import asr.predictions as log
    real, n, calls = log.PredictionWriter.write, int(arg), []
    def write(self, rows):
        calls.append(1)
        if kind == "torn" and len(calls) > n:
            line = io.StringIO()
            csv.DictWriter(line, fieldnames=log.COLUMNS).writerow(rows[0])
            self._file.write(line.getvalue()[: len(line.getvalue()) // 2])
            self._file.flush()
            os.fsync(self._file.fileno())
            die()
        real(self, rows)
        if kind == "batch" and len(calls) == n:
            die()
    log.PredictionWriter.write = write
sys.argv = ["asr", *sys.argv[1:]]
runpy.run_module("asr.cli", run_name="__main__", alter_sys=True)
"""


class LeftBehind(AssertionError):
    """A temp file or staging folder survived the rerun."""


# --- running and killing ------------------------------------------------------------------------


def _cli(*argv: str) -> list[str]:
    return [sys.executable, "-m", "asr.cli", *argv]


def _run(cmd: list[str], log: Path, **env: str) -> subprocess.Popen:
    with log.open("ab") as sink:
        return subprocess.Popen(cmd, cwd=REPO, env={**ENV, **env}, stdout=sink, stderr=sink)


def _kill_when(argv: list[str], ready: Callable[[], bool], log: Path, timeout: float = 120) -> int:
    """Start ``asr ARGV``; SIGKILL it as soon as ``ready()``. Returns its exit code (-9 when killed)."""
    proc = _run(_cli(*argv), log)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None:
            if ready():
                proc.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"asr {argv[0]} neither progressed nor finished in {timeout} s")
            time.sleep(0.002)
        return proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _killed_at(argv: list[str], point: str, log: Path) -> None:
    """Run ``asr ARGV`` under the harness, which SIGKILLs it at ``point`` (see HARNESS)."""
    proc = _run([sys.executable, "-c", HARNESS, *argv], log, ASR_KILL_AT=point)
    code = proc.wait(timeout=180)
    assert code == -signal.SIGKILL, f"asr {argv[0]} was not killed at {point} (exit {code}):\n" + _tail(log)


def _rerun(argv: list[str], log: Path) -> None:
    proc = _run(_cli(*argv), log)
    assert proc.wait(timeout=180) == 0, f"the rerun of asr {argv[0]} failed:\n" + _tail(log)


def _tail(log: Path) -> str:
    return log.read_text(encoding="utf-8", errors="replace")[-3000:]


def _partial(folder: Path, temp_files: bool) -> list[str]:
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if (temp_files and p.name.endswith(".tmp")) or ".partial-" in p.name or p.name.endswith(".old")
    )


def assert_nothing_partial(folder: Path, temp_files: bool = True) -> None:
    """No temp file, staging folder or set-aside copy under ``folder``.

    ``temp_files=False`` where a kill from outside may land inside an atomic write: the stale temp
    file that leaves is the known defect the STALE_TMP cases pin down, at a point chosen for sure.
    """
    left = _partial(folder, temp_files)
    if left:
        raise LeftBehind(f"left behind under {folder} after the rerun: {left}")


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path, hidden ones (temp files) left out."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


# --- asr prepare --------------------------------------------------------------------------------


def _audio_files(out: Path) -> int:
    try:
        return sum(1 for p in os.scandir(out / "audio") if p.name.endswith(".wav") and p.name[0] != ".")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize(
    "kill",
    [
        "outside:audio",  # SIGKILL from outside once 30 of 120 clips are extracted from the zip
        "rename:02_0030.wav",  # mid-extraction: a WAV written, not renamed
        "rename:test.jsonl",  # train/validation manifests written, test not
    ],
)
def test_prepare_killed_then_rerun(tmp_path: Path, kill: str) -> None:
    out = tmp_path / "prepared"
    argv = ["prepare", "--data-root", str(DEMO), "--out", str(out)]
    assert main(argv) == 0
    want = _files(out)
    shutil.rmtree(out)

    log = tmp_path / "log.txt"
    if kill == "outside:audio":
        _kill_when(argv, lambda: _audio_files(out) >= 30, log)
    else:
        _killed_at(argv, kill, log)
        assert not (out / "manifests" / "all.jsonl").exists()  # killed before the end
    _rerun(argv, log)

    got = _files(out)
    for name in ("manifests/all.jsonl", "manifests/train.jsonl", "manifests/test.jsonl"):
        assert got[name] == want[name], f"{name} differs from an uninterrupted run"
    assert got == want  # the other manifests, the reports and every extracted WAV too
    assert_nothing_partial(out, temp_files=not kill.startswith("outside"))


# --- asr evaluate -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy_whisper(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Whisper with noise on its weights: it says something different for each clip
    (a random tiny model repeats one word), so rows that changed places would show."""
    import torch

    from asr.models import load_model

    model = load_model(tiny_whisper, device="cpu", dtype="fp32")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.module.parameters():
            if p.dim() >= 2:
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    path = tmp_path_factory.mktemp("noisy-whisper") / "model"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def eval_reference(noisy_whisper: Path, demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("eval-reference") / "run"
    manifest = demo_data / "manifests" / "test.jsonl"
    assert main(["evaluate", "--model", str(noisy_whisper), "--manifest", str(manifest), "--out", str(out), *EVAL_ARGS]) == 0  # fmt: skip
    return out


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return [{k: v for k, v in row.items() if k != "decode_seconds"} for row in csv.DictReader(f)]


def _data_rows(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


TIMINGS = ("rtf", "decode_seconds", "timing", "provenance", "model_source", "manifest")


def test_evaluate_killed_again_and_again_then_resumed(
    noisy_whisper: Path, demo_data: Path, eval_reference: Path, tmp_path: Path
) -> None:
    """One run killed four times, each resume picking up where the last stopped (4 batches of 2)."""
    out = tmp_path / "run"
    manifest = demo_data / "manifests" / "test.jsonl"
    argv = [
        "evaluate",
        "--model",
        str(noisy_whisper),
        "--manifest",
        str(manifest),
        "--out",
        str(out),
        *EVAL_ARGS,
    ]
    resume = [*argv, "--resume"]
    predictions = out / "predictions.csv"
    log = tmp_path / "log.txt"

    _killed_at(argv, "batch:1", log)  # one batch durable
    assert _data_rows(predictions) == 2 and not (out / "metrics.json").exists()
    _killed_at(resume, "torn:1", log)  # one more batch durable, then half a row
    assert _data_rows(predictions) == 4 and not predictions.read_bytes().endswith(b"\n")
    # from outside, once the torn row is dropped and a batch more is written (it may also finish)
    _kill_when(resume, lambda: _data_rows(predictions) >= 6, log)
    _killed_at(resume, "rename:predictions.csv", log)  # all decoded; killed in the final reorder
    assert not (out / "metrics.json").exists()
    _rerun(resume, log)

    want_rows = _rows(eval_reference / "predictions.csv")
    assert len({r["prediction"] for r in want_rows}) > 2  # varied output: misplaced rows would show
    assert _rows(predictions) == want_rows
    assert (out / "per_utterance.csv").read_bytes() == (eval_reference / "per_utterance.csv").read_bytes()
    got = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    want = json.loads((eval_reference / "metrics.json").read_text(encoding="utf-8"))
    assert got["cer"] == want["cer"] and got["n_utterances"] == 8
    assert {k: v for k, v in got.items() if k not in TIMINGS} == {
        k: v for k, v in want.items() if k not in TIMINGS
    }
    assert_nothing_partial(out)


def test_a_row_torn_inside_a_multiline_prediction_is_dropped(tmp_path: Path) -> None:
    """A kill can cut a row anywhere, also right after a newline the model put in its output."""
    import io

    from asr.predictions import COLUMNS, PredictionWriter, read_done

    path = tmp_path / "predictions.csv"
    row = {"id": "a", "reference": "长沙", "prediction": "长沙", "prediction_raw": "长沙", "duration": 1.0}
    with PredictionWriter(path) as writer:
        writer.write([{**row, "decode_seconds": 0.1}])
    torn = io.StringIO()
    text = "第一行\n第二行"
    csv.DictWriter(torn, fieldnames=COLUMNS).writerow(
        {**row, "id": "b", "prediction": text, "prediction_raw": text, "decode_seconds": 0.1}
    )
    with path.open("a", encoding="utf-8", newline="") as f:
        f.write(torn.getvalue()[: torn.getvalue().index("\n") + 1])  # the kill lands after that newline
    assert list(read_done(path)) == ["a"]  # "b" must be decoded again, not resumed half-written


# --- asr export ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUN/ with run records and best/ = a LoRA checkpoint on the tiny Whisper (as tests/e2e/test_export.py)."""
    import torch

    from asr.models import load_model

    model = load_model(tiny_whisper, device="cpu", dtype="fp32")
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=gen)
    run = write_run(tmp_path_factory.mktemp("kill-export") / "run")
    model.save(run / "best")
    return run


def _without_provenance(files: dict[str, bytes]) -> dict[str, bytes]:
    info = json.loads(files["export_info.json"])
    info.pop("git_commit")
    return {**files, "export_info.json": json.dumps(info, sort_keys=True).encode()}


def test_export_killed_then_rerun(lora_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    argv = ["export", "--checkpoint", str(lora_run / "best"), "--out", str(out)]
    assert main(argv) == 0
    want = _without_provenance(_files(out))
    log = tmp_path / "log.txt"

    # killed between moving the previous export aside and renaming the new one into place:
    # nothing lost, the previous export is whole in .export.old until the next export settles it
    _killed_at(argv, "rename:export", log)
    assert not out.exists() and any(tmp_path.glob(".export.partial-*"))
    assert _without_provenance(_files(tmp_path / ".export.old")) == want

    # killed from outside as soon as its own staging folder appears (the previous export is back)
    stale = set(tmp_path.glob(".export.partial-*"))
    _kill_when(argv, lambda: bool(set(tmp_path.glob(".export.partial-*")) - stale), log)
    assert _without_provenance(_files(out)) == want and not (tmp_path / ".export.old").exists()

    _rerun(argv, log)
    assert _without_provenance(_files(out)) == want
    assert_nothing_partial(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export", "log.txt"]


# --- asr transcribe, asr segment, asr report (issue 21) ---------------------------------------------


@pytest.fixture(scope="module")
def two_recordings(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from tests.longform_media import demo_clips, join, write_media

    folder = tmp_path_factory.mktemp("recordings")
    clips = demo_clips(6)
    return [
        write_media(folder / f"{name}.m4a", join(part, pauses=[1.0], noise=0.01).audio)
        for name, part in (("one", clips[:3]), ("two", clips[3:]))
    ]


def _reference(argv_of: Callable[[Path], list[str]], tmp_path: Path) -> dict[str, bytes]:
    """What an uninterrupted run writes (in process, one thread, as the subprocesses)."""
    out = tmp_path / "reference"
    assert main(argv_of(out)) == 0
    return _files(out)


@pytest.mark.parametrize("point", ["rename:one.srt", "rename:two.json"])
def test_transcribe_killed_then_rerun(two_recordings, tiny_whisper, tmp_path, point) -> None:
    def argv_of(out: Path) -> list[str]:
        return ["transcribe", *map(str, two_recordings), "--model", str(tiny_whisper), "--out", str(out),
                "--no-progress"]  # fmt: skip

    want = _reference(argv_of, tmp_path)
    out, log = tmp_path / "out", tmp_path / "log.txt"
    _killed_at(argv_of(out), point, log)
    _rerun(argv_of(out), log)
    assert _files(out) == want
    assert_nothing_partial(out)


def test_segment_killed_then_rerun(two_recordings, tiny_whisper, tmp_path) -> None:
    def argv_of(out: Path) -> list[str]:
        return ["segment", *map(str, two_recordings), "--model", str(tiny_whisper), "--out", str(out),
                "--no-progress"]  # fmt: skip

    want = _reference(argv_of, tmp_path)
    out, log = tmp_path / "out", tmp_path / "log.txt"
    _killed_at(argv_of(out), "rename:draft.tsv", log)  # the first recording's clips are written
    _rerun(argv_of(out), log)
    got = _files(out)
    assert got.keys() == want.keys()
    for name in got:  # sources.json holds absolute paths of the recordings: the same here
        assert got[name] == want[name].replace(str(tmp_path / "reference").encode(), str(out).encode()), name
    assert_nothing_partial(out)


def test_report_killed_then_rerun(tmp_path) -> None:
    from tests.report_fixtures import HYPS_A, HYPS_B, write_data, write_eval

    data = write_data(tmp_path / "data")
    write_eval(tmp_path / "runs" / "a", HYPS_A, data)
    write_eval(tmp_path / "runs" / "b", HYPS_B, data, checkpoint="/x/best")

    def argv_of(out: Path) -> list[str]:
        return ["report", str(tmp_path / "runs"), "--out", str(out), "--html"]

    want = _reference(argv_of, tmp_path)
    out, log = tmp_path / "board", tmp_path / "log.txt"
    _killed_at(argv_of(out), "rename:results.csv", log)
    _rerun(argv_of(out), log)
    got = _files(out)
    assert got.keys() == want.keys()
    assert got["results.md"] == want["results.md"] and got["results.csv"] == want["results.csv"]
    assert_nothing_partial(out)


# --- asr zero-shot, asr benchmark, asr score, asr import-ct2, asr export --push-to-hub -------------


def _same_evaluation(got: Path, want: Path) -> None:
    """An evaluation folder equal to an undisturbed run's: rows, per-utterance table, metrics."""
    assert _rows(got / "predictions.csv") == _rows(want / "predictions.csv"), got
    assert (got / "per_utterance.csv").read_bytes() == (want / "per_utterance.csv").read_bytes(), got
    a, b = (json.loads((d / "metrics.json").read_text(encoding="utf-8")) for d in (got, want))
    assert {k: v for k, v in a.items() if k not in TIMINGS} == {
        k: v for k, v in b.items() if k not in TIMINGS
    }


@pytest.fixture(scope="module")
def two_models(
    noisy_whisper: Path, tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[Path]:
    """Two model folders with distinct names (zero-shot names a model's results by its folder)."""
    folder = tmp_path_factory.mktemp("two-models")
    for name, target in (("noisy", noisy_whisper), ("tiny", tiny_whisper)):
        (folder / name).symlink_to(target, target_is_directory=True)
    return [folder / "noisy", folder / "tiny"]


def test_zero_shot_killed_then_rerun(two_models, demo_data, tmp_path) -> None:
    """Killed halfway through the second model's first row: the first model is reused, the second resumed."""
    manifest = demo_data / "manifests" / "test.jsonl"

    def argv_of(out: Path) -> list[str]:
        return ["zero-shot", "--models", *map(str, two_models), "--manifest", str(manifest), "--out", str(out),
                "--limit", "4", "--no-progress"]  # fmt: skip

    ref, out, log = tmp_path / "reference", tmp_path / "out", tmp_path / "log.txt"
    assert main(argv_of(ref)) == 0
    _killed_at(argv_of(out), "torn:1", log)  # noisy finished, half a row of tiny written
    assert (out / "noisy" / "metrics.json").exists() and not (out / "zero_shot.csv").exists()
    _rerun(argv_of(out), log)
    assert "resuming: 4 of 4 utterances already decoded" in _tail(log)  # the finished model is not redone
    for model in two_models:
        _same_evaluation(out / model.name, ref / model.name)
    with (
        (out / "zero_shot.csv").open(encoding="utf-8") as a,
        (ref / "zero_shot.csv").open(encoding="utf-8") as b,
    ):
        assert [{**r, "rtf": ""} for r in csv.DictReader(a)] == [{**r, "rtf": ""} for r in csv.DictReader(b)]
    assert_nothing_partial(out)


def test_benchmark_killed_then_rerun(two_models, demo_data, tmp_path) -> None:
    """Killed once the first model's predictions are durable (before it is scored): the rerun resumes it
    (nothing decoded again), runs the second and writes the same leaderboard."""

    def argv_of(out: Path) -> list[str]:
        return ["benchmark", "--data", str(demo_data), "--out", str(out), "--models", *map(str, two_models),
                "--finetune", "--limit", "4", "--no-progress"]  # fmt: skip

    ref, out, log = tmp_path / "reference", tmp_path / "out", tmp_path / "log.txt"
    assert main(argv_of(ref)) == 0
    _killed_at(argv_of(out), "batch:1", log)
    first = out / "zero-shot" / "noisy"
    assert json.loads((first / "stage.json").read_text(encoding="utf-8"))["status"] == "running"
    assert not (first / "metrics.json").exists() and not (out / "report").exists()
    _rerun(argv_of(out), log)
    assert "resuming: 4 of 4 utterances already decoded" in _tail(log)
    for model in two_models:
        stage = out / "zero-shot" / model.name
        assert json.loads((stage / "stage.json").read_text(encoding="utf-8"))["status"] == "done"
        _same_evaluation(stage, ref / "zero-shot" / model.name)
    kept = ("model", "setting", "status", "cer", "cer_ci95_low", "cer_ci95_high", "wer", "ser", "n_utterances",
            "delta_vs_baseline", "delta_ci95_low", "delta_ci95_high", "p_delta_ge_0", "note")  # fmt: skip
    tables = []
    for run in (out, ref):
        with (run / "report" / "results.csv").open(encoding="utf-8") as f:
            tables.append([{k: r[k] for k in kept} for r in csv.DictReader(f)])
    assert tables[0] == tables[1] and len(tables[0]) == 2
    assert_nothing_partial(out)


def test_score_killed_then_rerun(eval_reference, tmp_path) -> None:
    """Killed between its two outputs (metrics.json written, per_utterance.csv not)."""
    predictions = tmp_path / "predictions.csv"
    shutil.copyfile(eval_reference / "predictions.csv", predictions)

    def argv_of(out: Path) -> list[str]:
        return [
            "score",
            "--predictions",
            str(predictions),
            "--out",
            str(out / "metrics.json"),
            "--bootstrap",
            "50",
        ]

    want, out, log = _reference(argv_of, tmp_path), tmp_path / "out", tmp_path / "log.txt"
    _killed_at(argv_of(out), "rename:per_utterance.csv", log)
    _rerun(argv_of(out), log)
    assert _files(out) == want
    assert_nothing_partial(out)


def test_import_ct2_killed_then_rerun(tiny_ct2, tmp_path) -> None:
    """``--force`` over an earlier import, killed just before the new import is renamed into place:
    the rerun imports again, identical to an undisturbed import, and nothing half-imported is left
    (a stale staging folder holds a whole model's weights)."""
    from asr.models.whisper.ct2_import import is_complete_import

    want = _reference(lambda out: ["import-ct2", str(tiny_ct2), str(out)], tmp_path)
    root = tmp_path / "models"
    out, log = root / "imported", tmp_path / "log.txt"
    assert main(["import-ct2", str(tiny_ct2), str(out)]) == 0
    _killed_at(["import-ct2", str(tiny_ct2), str(out), "--force"], "rename:imported", log)
    assert not is_complete_import(out) or _files(out) == want  # never a half import that looks complete
    _rerun(["import-ct2", str(tiny_ct2), str(out)], log)
    assert _files(out) == want and is_complete_import(out)
    assert sorted(p.name for p in root.iterdir()) == ["imported"]


def test_push_killed_then_rerun(tiny_whisper, fake_hub, tmp_path) -> None:
    """``asr export --push-to-hub`` killed with its commit in flight (the LFS objects uploaded, the
    commit request sent but not applied): the Hub repo is left unchanged, the local export whole, and
    the rerun's push makes the repo identical to an undisturbed push."""
    import threading

    out = tmp_path / "export"  # the same --out for both pushes: the model card records the command

    argv = ["export", "--checkpoint", str(tiny_whisper), "--out", str(out), "--push-to-hub", "tester/m"]
    assert main(argv) == 0
    want = _without_provenance(
        fake_hub.repos.pop("tester/m").files
    )  # undisturbed; the Hub starts empty again
    fake_hub.lfs_objects.clear()
    shutil.rmtree(out)

    reached, release = threading.Event(), threading.Event()

    def hold_the_commit(method: str, path: str) -> bool:
        if "/commit/" not in path:
            return True
        reached.set()
        release.wait(timeout=120)
        return False  # the client is dead by now: the commit never lands

    fake_hub.gate = hold_the_commit
    hub_env = {"HF_ENDPOINT": fake_hub.url, "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_XET": "1",
               "HF_HOME": str(tmp_path / "hf-home")}  # fmt: skip
    log = tmp_path / "log.txt"
    try:
        proc = _run(_cli(*argv), log, **hub_env)
        assert reached.wait(timeout=120), "the push never reached its commit:\n" + _tail(log)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        release.set()
    fake_hub.gate = None
    repo = fake_hub.repos["tester/m"]
    assert repo.commits == [] and repo.files == {}  # nothing half-pushed
    assert _without_provenance(_files(out)) == want  # the local export is whole

    proc = _run(_cli(*argv), log, **hub_env)
    assert proc.wait(timeout=180) == 0, "the rerun of the push failed:\n" + _tail(log)
    assert len(repo.commits) == 1 and _without_provenance(repo.files) == want
    assert _files(out) == repo.files
    assert_nothing_partial(tmp_path)
    assert TOKEN not in _tail(log)


# --- asr finetune -------------------------------------------------------------------------------


def test_finetune_killed_then_resumed(tiny_whisper, few_clips, tmp_path) -> None:
    """``asr finetune`` SIGKILLed from outside once its step-3 checkpoint is on disk (so mid-epoch,
    mid-save or mid-step 4), then ``--resume``d: the same losses, adapter weights, best step and
    test CER as an undisturbed run (the in-process test with a KeyboardInterrupt is
    tests/e2e/test_finetune.py; this one kills a real process, so no handler runs)."""
    import torch
    from safetensors.torch import load_file

    from asr.train.finetune_config import load_finetune_config
    from asr.train.recipe import finetune

    def overrides(out: Path) -> list[str]:
        return [
            f"model={tiny_whisper}", f"data={few_clips}", f"output_dir={out}", "num_workers=0", "bootstrap=0",
            "zero_shot=false", "warmup_ratio=0", "logging_steps=1", "patience=null", "method=lora",
            "lora.scope=decoder", "lora.r=4", "lora.dropout=0.1", "batch_size=2", "max_steps=6",
            "eval_steps=3", "eval_limit=1", "learning_rate=5e-3",
        ]  # fmt: skip

    want, got = tmp_path / "undisturbed", tmp_path / "killed"
    finetune(load_finetune_config(None, overrides(want)))
    log = tmp_path / "log.txt"
    code = _kill_when(
        ["finetune", *overrides(got)], lambda: (got / "checkpoint-3" / "trainer_state.json").is_file(), log
    )
    assert code == -signal.SIGKILL, "the fine-tuning finished before the kill:\n" + _tail(log)
    assert not (got / "summary.json").exists()
    _rerun(["finetune", *overrides(got), "--resume"], log)

    assert sorted(_losses(got)) == sorted(_losses(want)) == [1, 2, 3, 4, 5, 6]
    for step, loss in _losses(want).items():
        assert _losses(got)[step] == pytest.approx(loss, rel=1e-5, abs=1e-6), step
    a = load_file(want / "checkpoint-6" / "adapter_model.safetensors")
    b = load_file(got / "checkpoint-6" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and a
    for key, value in a.items():
        torch.testing.assert_close(b[key], value, rtol=1e-5, atol=1e-6)
    summary_a, summary_b = (json.loads((o / "summary.json").read_text(encoding="utf-8")) for o in (want, got))
    assert summary_b["best_step"] == summary_a["best_step"]
    assert summary_b["test"]["fine_tuned"]["cer"] == summary_a["test"]["fine_tuned"]["cer"]
    assert_nothing_partial(got)
