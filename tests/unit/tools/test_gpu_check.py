"""``tools.gpu_check``'s report: the verdict line, the exit policy, versions against the pins, options."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.gpu_check import (
    REPO,
    against_paper,
    check_args,
    differences_from_pins,
    parse_args,
    pinned_versions,
    result_line,
    section_timeout,
    verdict,
)

MISSING = {"status": "skipped", "reason": "missing package: soundfile", "blocking": True}
NO_CUDA = {"status": "skipped", "reason": "DeepSpeed ZeRO-2 needs CUDA", "blocking": False}


def _report(**sections: dict) -> dict:
    return {"sections": {"environment": {"status": "ok"}, **sections}}


def test_verdict_names_what_was_skipped_and_failed() -> None:
    line, passed = verdict(_report(corpus={"status": "failed", "error": "x"}, deepspeed_zero2=NO_CUDA), set())
    assert (
        line
        == "gpu-check: 1/3 sections ok, 1 failed: corpus, 1 skipped: deepspeed_zero2 (DeepSpeed ZeRO-2 needs CUDA)"
    )
    assert not passed


def test_a_skip_for_a_missing_package_fails_unless_allowed() -> None:
    report = _report(corpus=MISSING, deepspeed_zero2=NO_CUDA)
    assert verdict(report, set())[1] is False
    assert verdict(report, {"corpus"})[1] is True
    assert verdict(_report(deepspeed_zero2=NO_CUDA), set())[1] is True  # no CUDA here: not a defect


def test_result_line() -> None:
    r = {
        "status": "ok",
        "utterances_per_second": 41.234,
        "peak_gpu_memory_mib": 5321.4,
        "section_seconds": 38.2,
    }
    assert result_line(3, 11, "whisper_small_lora_bf16", r) == (
        "gpu-check: [3/11] whisper_small_lora_bf16: ok, 41.23 utt/s, peak 5321 MiB, 38 s"
    )
    failed = {"status": "failed", "error": "Traceback ...\nRuntimeError: boom", "section_seconds": 2}
    assert result_line(1, 2, "corpus", failed) == "gpu-check: [1/2] corpus: failed, 2 s (RuntimeError: boom)"


def test_measured_against_the_paper_model() -> None:
    result = {"status": "ok", "utterances_per_second": 100.2, "section_seconds": 30}
    against_paper("whisper_small_lora_bf16", result, smoke=False)
    assert result["paper_utterances_per_second"] == 500.6 and result["share_of_paper"] == 0.2
    assert "20% of the paper model" in result_line(1, 1, "whisper_small_lora_bf16", result)
    smoke = {"status": "ok", "utterances_per_second": 1.0}
    against_paper("whisper_small_lora_bf16", smoke, smoke=True)
    assert "share_of_paper" not in smoke


def test_versions_that_differ_from_the_pins() -> None:
    pins = pinned_versions()
    assert pins["torch"] == "2.14.1" and pins["transformers"] == "5.24.0" and pins["deepspeed"] == "0.19.8"
    found = {"torch": "2.11.0+cu130", "transformers": "5.24.0", "peft": None, "accelerate": "1.15.0"}
    assert differences_from_pins(found, pins) == {"torch": {"pinned": "2.14.1", "found": "2.11.0+cu130"}}
    assert differences_from_pins({"torch": "2.14.1+cu130"}, pins) == {}


def test_bad_options(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert "outside --out" in check_args(parse_args(["--out", str(out), "--scratch", str(out / "work")]))
    assert "--budget-s" in check_args(parse_args(["--budget-s", "0"]))
    assert "no section nope" in check_args(parse_args(["--allow-skip", "nope"]))
    assert "NAME=seconds" in check_args(parse_args(["--section-timeout-s", "nope=3"]))
    assert "NAME=seconds" in check_args(parse_args(["--section-timeout-s", "corpus=-1"]))
    args = parse_args(["--smoke", "--section-timeout-s", "30", "corpus=7"])
    assert check_args(args) is None
    assert (section_timeout("corpus", args), section_timeout("environment", args)) == (7, 30)
    assert section_timeout("corpus", parse_args(["--smoke"])) == 120
    assert check_args(parse_args(["--out", str(out), "--scratch", str(tmp_path / "s")])) is None
    proc = subprocess.run(
        [sys.executable, "-m", "tools.gpu_check", "--out", str(out), "--scratch", str(out)],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    assert (
        proc.returncode == 2 and proc.stderr.startswith("error: --scratch") and "Traceback" not in proc.stderr
    )


def test_the_check_imports_only_the_standard_library() -> None:
    """It must start where the host lacks everything but Python (every import is inside a section)."""
    code = "import sys, tools.gpu_check; print(sorted(m for m in ('torch', 'numpy', 'asr', 'transformers') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_a_missing_package_in_a_section_is_a_blocking_skip_naming_it(tmp_path: Path, monkeypatch) -> None:
    from tools import gpu_sections

    def needs(module: str):
        def section(plan):
            __import__(module)

        return section

    monkeypatch.setattr(
        gpu_sections,
        "sections",
        lambda args: {"corpus": needs("soundfile_absent"), "environment": needs("asr.nope")},
    )
    plan = gpu_sections.Plan("cpu", True, tmp_path)
    skipped = gpu_sections.run_one("corpus", plan, None)
    assert skipped["status"] == "skipped" and skipped["blocking"] and skipped["missing"] == "soundfile_absent"
    assert skipped["reason"] == "missing package: soundfile_absent (No module named 'soundfile_absent')"
    ours = gpu_sections.run_one("environment", plan, None)  # a module of the project itself: a defect
    assert ours["status"] == "failed" and "asr.nope" in ours["error"]


def test_ctranslate2s_cuda12_libraries_are_looked_for_before_any_conversion(monkeypatch) -> None:
    from tools import gpu_sections

    def no_library(name, mode=0):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(gpu_sections.ctypes, "CDLL", no_library)
    reason = gpu_sections.preload_cuda12()
    assert reason.startswith(
        "CTranslate2 is a CUDA 12 build and libcublasLt.so.12, libcublas.so.12, libcudnn.so.9"
    )
