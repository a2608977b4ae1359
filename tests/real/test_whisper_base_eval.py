"""Real tier: Whisper base (imported from the PyPI weight packages) through ``asr evaluate``."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main
from asr.data.audio import load_audio
from asr.metrics import score
from asr.models import load_model
from asr.models.spec import DecodeOptions

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def demo_test_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    assert main(["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(out)]) == 0
    return out / "manifests" / "test.jsonl"


def _evaluate_demo(model: Path, manifest: Path, out: Path, *flags: str) -> None:
    args = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    assert main([*args, "--no-progress", "--device", "cpu", *flags]) == 0


# README, Results (default: auto) and BENCHMARKS.md's short-context rows (full): demo test split
ZERO_SHOT = {
    "auto": (0.8610, (145, 13, 3)),
    "full": (0.9037, (143, 16, 10)),
}


@pytest.mark.parametrize("context", ["auto", "full"])
def test_evaluate_demo_reproduces_the_readme_zero_shot_cer(
    whisper_base_dir: Path, demo_test_manifest: Path, tmp_path: Path, context: str
) -> None:
    out = tmp_path / "eval"
    flags = [] if context == "auto" else ["--audio-context", context]  # auto is the default
    # the README's numbers are the torch path's (the default then)
    _evaluate_demo(whisper_base_dir, demo_test_manifest, out, "--backend", "torch", *flags)
    with (out / "predictions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20
    with_cjk = sum(bool(CJK.search(r["prediction"])) for r in rows)
    assert with_cjk >= 15, [r["prediction"] for r in rows]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["decoding"]["guard"] is True
    assert metrics["decoding"]["audio_context"] == context
    cer, sdi = ZERO_SHOT[context]
    assert metrics["cer"] == pytest.approx(cer, abs=0.002)
    assert (metrics["substitutions"], metrics["deletions"], metrics["insertions"]) == sdi


def _espeak(tmp_path: Path, voice: str, text: str, speed: int) -> np.ndarray:
    wav = tmp_path / f"{voice}.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text], check=True)
    return load_audio(wav)


@pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng not installed (make install adds it)"
)
def test_guard_lowers_insertions_where_greedy_loops(whisper_base_dir: Path, tmp_path: Path) -> None:
    # Sixteen fast "ha" syllables: unguarded greedy Whisper base loops on 哈 up to its token limit.
    wave = _espeak(tmp_path, "cmn-latn-pinyin", " ".join(["ha1"] * 16), 220)
    reference = "哈" * 16
    model = load_model(str(whisper_base_dir), device="cpu")
    duration = len(wave) / 16000
    guarded = model.transcribe([wave], DecodeOptions(), durations=[duration])[0]
    unguarded = model.transcribe([wave], DecodeOptions(guard=False), durations=[duration])[0]
    on = score(["x"], [reference], [guarded], n_bootstrap=0).metrics
    off = score(["x"], [reference], [unguarded], n_bootstrap=0).metrics
    assert off.insertions >= 50, unguarded  # the loop this guard exists for
    assert on.insertions < off.insertions / 10
    assert on.cer < off.cer


def test_ct2_at_30_s_packs_by_default_and_falls_back_where_attribution_fails(
    whisper_base_dir: Path, demo_test_manifest: Path, tmp_path: Path
) -> None:
    """BENCHMARKS.md, "Packing short clips": the demo test split through ``asr evaluate --backend ct2
    --audio-context full`` packs (3 windows; 2 fall back, one of them romanized) at CER 0.9091,
    against 0.9144 unpacked. About 30 s of CPU."""
    out = tmp_path / "eval"
    _evaluate_demo(whisper_base_dir, demo_test_manifest, out, "--backend", "ct2", "--audio-context", "full")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["decoding"]["packing"] is True and metrics["decoding"]["compute_type"] == "int8"
    assert metrics["decode_stats"] == {
        "packed_windows": 3,
        "packing_fallback_windows": 2,
        "packing_fallback_clips": 15,
    }
    assert metrics["cer"] == pytest.approx(0.9091, abs=0.002)
    assert (metrics["substitutions"], metrics["deletions"], metrics["insertions"]) == (140, 20, 10)
    with (out / "predictions.csv").open(encoding="utf-8") as f:
        assert all(r["prediction"].strip() for r in csv.DictReader(f))
