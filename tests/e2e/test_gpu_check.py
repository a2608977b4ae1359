"""``make gpu-check`` in its CPU form: ``python -m tools.gpu_check --device cpu --smoke``.

Every section must be in the JSON with numbers (it ran) or a skip reason (no CPU form).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(600)
def test_gpu_check_smoke_on_cpu(tmp_path: Path) -> None:
    from tools.gpu_check import JSON_NAME, SECTIONS

    out = tmp_path / "gpu-check"
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-m", "tools.gpu_check", "--device", "cpu", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((out / JSON_NAME).read_text(encoding="utf-8"))
    sections = report["sections"]
    failed = {k: v.get("error") for k, v in sections.items() if v.get("status") == "failed"}
    assert proc.returncode == 0 and not failed, (failed, proc.stderr[-3000:])
    assert report["device"] == "cpu" and report["smoke"] is True
    assert report["data"]["train"]["clips"] == 8
    assert list(sections) == list(SECTIONS)
    for name, result in sections.items():
        if result["status"] == "skipped":
            assert result["reason"], name
            continue
        assert result["status"] == "ok", name
        assert result["utterances_per_second"] > 0, name
        assert result["peak_rss_mib"] > 0 and result["peak_gpu_memory_mib"] is None, name
    ran = {k for k, v in sections.items() if v["status"] == "ok"}
    # what has a CPU form runs; CTranslate2 float16 and DeepSpeed need CUDA
    assert {"whisper_small_lora", "whisper_small_full", "turbo_eval_torch", "torchrun_nproc1"} <= ran
    assert sections["deepspeed_zero2"]["reason"] and sections["turbo_eval_ct2"]["reason"]
    for name in ("whisper_small_lora", "whisper_small_full", "torchrun_nproc1"):
        assert sections[name]["steps"] == 2, name
    assert sections["torchrun_nproc1"]["world_size"] == 1
    assert (
        sections["whisper_small_lora"]["trainable_parameters"]
        < sections["whisper_small_full"]["trainable_parameters"]
    )
    assert "whisper_small_lora" in proc.stdout and "utt/s" in proc.stdout  # the table
    assert not (out / "work").exists()  # replicas, clips and runs are removed
