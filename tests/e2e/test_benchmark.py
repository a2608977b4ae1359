"""asr benchmark on the demo corpus with a tiny random Whisper: stages, skipped rows, resume, --force."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main
from asr.workflows import benchmark


@pytest.fixture
def args(demo_data: Path, tiny_whisper: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    monkeypatch.setattr(
        benchmark, "weights_problem", lambda m: None if m == str(tiny_whisper) else f"none for {m}"
    )
    return ["benchmark", "--data", str(demo_data), "--out", str(tmp_path / "bench"), "--models", str(tiny_whisper),
            "whisper-small", "--finetune", "whisper-small:lora", "--limit", "4", "--no-progress"]  # fmt: skip


def test_benchmark_rows_reports_resume_and_force(args: list[str], tmp_path: Path) -> None:
    out = tmp_path / "bench"
    assert main(args) == 0
    md = (out / "report" / "results.md").read_text(encoding="utf-8")
    assert (
        "Data: cs-mage-asr demo corpus (synthetic espeak-ng speech, not CS-Mage): train 80 / validation 20"
        in md
    )
    assert "| whisper-small |" not in md  # unreachable weights: one line under the table (issue 20)
    assert (
        "Not run here (weights not reachable from this machine: no Hub/ModelScope access): "
        "whisper-small (zero-shot); whisper-small (LoRA)." in md
    )
    line = next(row for row in md.splitlines() if row.startswith("| model | zero-shot"))
    assert "| zero-shot | " in line and f"`asr zero-shot --manifest {args[2]}/manifests/test.jsonl" in line
    assert (out / "zero-shot" / "model" / "report.html").is_file()
    assert (out / "report" / "cer_bars.svg").is_file() and (out / "report" / "results.tex").is_file()

    predictions = out / "zero-shot" / "model" / "predictions.csv"
    before = predictions.stat().st_mtime_ns
    assert main(args) == 0  # every stage done or skipped: nothing decoded again
    assert predictions.stat().st_mtime_ns == before
    assert main([*args, "--beam-size", "2"]) == 2  # a changed setting is refused
    assert main([*args, "--beam-size", "2", "--force"]) == 0
    assert predictions.stat().st_mtime_ns != before
