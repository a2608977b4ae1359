"""``tools.gpu_check`` under a hanging section: the section's whole process group is killed at its
timeout or when the global budget runs out, the result says so, and the other sections still run.

``GPU_CHECK_HANG=NAME`` makes section NAME start a grandchild (``sleep``) and hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _check(tmp_path: Path, *args: str, hang: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = {**os.environ, "GPU_CHECK_HANG": hang, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.gpu_check", "--device", "cpu", "--smoke", "--out", str(tmp_path / "out"),
         "--scratch", str(tmp_path / "scratch"), *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return proc, json.loads((tmp_path / "out" / "gpu_check.json").read_text(encoding="utf-8"))


def _gone(pid: int, wait: float = 10.0) -> bool:
    """No such process, or only its zombie (killed, not yet reaped by init)."""
    end = time.monotonic() + wait
    while time.monotonic() < end:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state == "Z":
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(300)
def test_a_hanging_section_is_killed_with_its_group_and_the_next_still_runs(tmp_path: Path) -> None:
    proc, report = _check(
        tmp_path,
        "--sections",
        "environment",
        "corpus",
        "--section-timeout-s",
        "environment=6",
        hang="environment",
    )
    env, corpus = report["sections"]["environment"], report["sections"]["corpus"]
    assert proc.returncode == 1, proc.stderr
    assert env["status"] == "failed" and env["timed_out"], env
    assert "timed out after 6 s" in env["error"]
    assert _gone(int((tmp_path / "scratch" / "hang.pid").read_text()))  # the grandchild died too
    assert corpus["status"] == "ok" and corpus["train"]["clips"] == 8
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("gpu-check: [1/2] environment: failed")
    assert lines[1].startswith("gpu-check: [2/2] corpus: ok")
    assert lines[-1] == "gpu-check: 1/2 sections ok, 1 failed: environment"
    assert report["passed"] is False and report["verdict"] == lines[-1]


@pytest.mark.timeout(300)
def test_the_budget_ends_a_hanging_section_and_what_is_left_is_not_run(tmp_path: Path) -> None:
    start = time.monotonic()
    proc, report = _check(
        tmp_path, "--sections", "environment", "corpus", "--budget-s", "8", hang="environment"
    )
    assert time.monotonic() - start < 60
    env, corpus = report["sections"]["environment"], report["sections"]["corpus"]
    assert proc.returncode == 1
    assert env["timed_out"] and 7 <= env["section_seconds"] < 30, env
    assert corpus == {"status": "failed", "error": "not run: the budget of 8 s was spent"}
    assert proc.stdout.splitlines()[-1] == "gpu-check: 0/2 sections ok, 2 failed: environment, corpus"
