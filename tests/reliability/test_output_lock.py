"""Two commands on the same output folder: the second is refused at once, and a killed holder
leaves no stale lock (issue 21: this was decided by luck of timing)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr.cli import main
from asr.output_lock import output_lock

HOLD = """
import sys, time
from asr.output_lock import output_lock
with output_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, subprocess.Popen]]:
    out = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    yield out, holder
    holder.kill()
    holder.wait()


def test_a_second_command_on_the_same_out_is_refused(held, tmp_path: Path, capsys) -> None:
    out, holder = held
    argv = ["evaluate", "--model", "whisper-base", "--manifest", str(tmp_path / "m.jsonl"), "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"error: {out.resolve()}: another asr command is writing there (pid {holder.pid})" in err
    assert not out.exists()


def test_finetune_takes_the_lock_of_its_output_dir(held, tmp_path: Path, capsys) -> None:
    out, holder = held
    config = Path(__file__).resolve().parents[2] / "configs" / "whisper-base-lora.yaml"
    assert main(["finetune", "--config", str(config), f"output_dir={out}", f"data={tmp_path}"]) == 2
    assert f"another asr command is writing there (pid {holder.pid})" in capsys.readouterr().err


def test_a_killed_holder_leaves_no_lock(held) -> None:
    out, holder = held
    holder.kill()
    holder.wait()
    with output_lock(out):
        pass


def test_a_child_process_of_the_holder_may_write_there(tmp_path: Path) -> None:
    """A command that runs a stage as a subprocess on its own --out (tools.gpu_check's torchrun child)."""
    out = tmp_path / "run"
    with output_lock(out):
        child = subprocess.run([sys.executable, "-c", HOLD.replace("time.sleep(120)", "pass"), str(out)],
                               capture_output=True, text=True, timeout=60)  # fmt: skip
    assert child.returncode == 0 and child.stdout.strip() == "held", child.stderr
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
    try:  # released: a later, unrelated process takes it
        assert holder.stdout.readline().strip() == "held"
    finally:
        holder.kill()
        holder.wait()
