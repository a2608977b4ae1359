"""The command's phase clock (asr.timing) and its record in metrics.json (run_records.Timing)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from asr.run_records import CorpusMetrics, EvalRecord, Timing
from asr.timing import PhaseClock

ROOT = Path(__file__).resolve().parents[2]
METRICS = CorpusMetrics(cer=0.25, errors=1, substitutions=1, deletions=0, insertions=0, ref_chars=4,
                        n_utterances=1, ser=1.0, wer=1.0)  # fmt: skip


def test_phases_follow_each_other_and_add_up_to_the_total() -> None:
    clock = PhaseClock(start=time.perf_counter() - 2.0)  # two seconds of "imports"
    clock.lap("load")
    time.sleep(0.02)
    clock.lap("decode")
    clock.lap("decode")  # a phase lapped twice adds up
    timing = Timing.from_clock(clock)
    assert 2.0 <= timing.import_seconds < 2.5 and timing.decode_seconds >= 0.02
    assert timing.finish_seconds == 0.0  # never lapped
    parts = timing.import_seconds + timing.load_seconds + timing.decode_seconds + timing.finish_seconds
    assert parts == pytest.approx(timing.total_seconds, abs=0.005)
    with pytest.raises(ValueError, match="unknown phase 'score'"):
        clock.lap("score")


def test_timing_travels_in_metrics_json(tmp_path: Path) -> None:
    timing = Timing(1.5, 0.25, 3.0, 0.125, 4.875)
    path = EvalRecord(metrics=METRICS, model="whisper-base", timing=timing).save(tmp_path / "metrics.json")
    assert EvalRecord.load(path).timing == timing
    assert EvalRecord.load(EvalRecord(metrics=METRICS).save(tmp_path / "old.json")).timing is None


def test_the_clock_starts_with_the_process() -> None:
    """Run as the program, the import phase includes what happened before asr was imported."""
    code = (
        "import time; time.sleep(0.3)\n"
        "from asr.timing import mark_command_start, PhaseClock\n"
        "mark_command_start(program=True); print(PhaseClock().seconds['import'])"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert 0.3 <= float(done.stdout) < 30
