"""``asr evaluate --context`` and a manifest's ``context`` on Whisper (its previous-text prompt):
recorded in run.json, and packed windows never mix clips of different contexts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import WhisperTokenizer

from asr.data.manifest import read_manifest, write_manifest
from asr.models.whisper.decoding import TorchWhisperDecoder
from tests.e2e.speech_llm_runs import evaluate_rows

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]


def test_packed_context_groups_and_run_record(
    tiny_whisper: Path, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    utts = read_manifest(demo_data / "manifests" / "test.jsonl")[:4]
    for utt, context in zip(utts, ["岳麓山", "岳麓山", "橘子洲", None], strict=True):
        if context:
            utt.extra["context"] = context
    write_manifest(tmp_path / "mixed.jsonl", utts)
    tok = WhisperTokenizer.from_pretrained(tiny_whisper)
    seen: list[tuple[str, int, bool]] = []
    generate = TorchWhisperDecoder.generate

    def spy(self, features, prompt, limits, timestamps):
        seen.append((tok.decode(prompt.previous[1:]).strip(), len(features), timestamps))
        return generate(self, features, prompt, limits, timestamps)

    monkeypatch.setattr(TorchWhisperDecoder, "generate", spy)
    rows = evaluate_rows(
        tiny_whisper,
        tmp_path / "mixed.jsonl",
        tmp_path / "run",
        *(
            "--batch-size",
            "4",
            "--packing",
            "--audio-context",
            "full",
            "--context",
            "坡子街",
            "--backend",
            "torch",
        ),
    )
    assert len(rows) == 4
    # the two 岳麓山 clips share one 30 s window (whose attribution fails on the random model, so
    # both are decoded again unpacked, still with their own context); the others decode unpacked
    assert sorted(seen) == [
        ("坡子街", 1, False),
        ("岳麓山", 1, True),
        ("岳麓山", 2, False),
        ("橘子洲", 1, False),
    ]
    decoding = json.loads((tmp_path / "run" / "run.json").read_text(encoding="utf-8"))["decoding"]
    assert decoding["context"] == "坡子街" and decoding["packing"] is True
    assert decoding["context_prompt_tokens"] == 1 + len(tok.encode(" 坡子街", add_special_tokens=False))
