"""Small synthetic run folders for the report tests: fixed texts, real scorer, no model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from asr.data.audio import write_wav
from asr.metrics import score, write_score
from asr.run_records import EvalRecord

# id, duration, reference, hypothesis (system A: zero-shot-like, system B: better)
REFS = {
    "video_1_1": (1.5, "我是长沙人。"),
    "video_1_2": (2.5, "今天好热咯！"),
    "video_2_1": (3.5, "<b>冇得事</b> & 好"),
    "video_2_2": (5.0, "爸爸咧明天带我去公园噻"),
    "video_3_1": (9.0, "我屋里老弟蛮听话的嘞"),
}
HYPS_A = {
    "video_1_1": "我事长沙人啊",
    "video_1_2": "今天好热",
    "video_2_1": "冇得是好",
    "video_2_2": "爸爸明天带我去公园噻噻噻噻噻噻噻噻",
    "video_3_1": "好的好的好的好的好的好的",
}
HYPS_B = {
    "video_1_1": "我是长沙人",
    "video_1_2": "今天好热咯",
    "video_2_1": "冇得事好",
    "video_2_2": "爸爸咧明天带我去公园",
    "video_3_1": "我屋里老弟蛮听话嘞",
}
PROVENANCE = {"git_commit": "0123456789abcdef", "created": "2026-12-01T10:00:00+00:00"}


def write_data(root: Path, clips: bool = True) -> Path:
    """A prepared folder: manifests/test.jsonl and the data record of a csmage-layout corpus."""
    (root / "manifests").mkdir(parents=True, exist_ok=True)
    (root / "reports").mkdir(exist_ok=True)
    lines = []
    for uid, (duration, text) in REFS.items():
        audio = root / "audio" / f"{uid}.wav"
        if clips:
            write_wav(audio, np.zeros(int(16000 * 0.2), dtype=np.float32))
        lines.append(json.dumps({"id": uid, "audio": str(audio), "duration": duration, "text": text,
                                 "split": "test"}, ensure_ascii=False))  # fmt: skip
    (root / "manifests" / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = {"data_root": str(root / "corpus"), "layout": "kaldi", "protocol": "random",
              "split_provenance": {"protocol": "random", "source": "random", "seed": 42},
              "counts": {"train": 10, "validation": 3, "test": 5, "all": 18}}  # fmt: skip
    (root / "reports" / "data_validation.json").write_text(json.dumps(report), encoding="utf-8")
    return root


def write_eval(
    out: Path,
    hyps: dict[str, str],
    data: Path,
    model: str = "whisper-base",
    raw: dict | None = None,
    **record,
) -> Path:
    """An evaluation folder as ``asr evaluate`` leaves it (metrics.json, per_utterance.csv, predictions.csv);
    ``raw`` replaces some raw model outputs (``prediction_raw``)."""
    out.mkdir(parents=True, exist_ok=True)
    ids = list(REFS)
    refs = [REFS[i][1] for i in ids]
    preds = [hyps[i] for i in ids]
    durations = [REFS[i][0] for i in ids]
    result = score(ids, refs, preds, durations=durations, decode_seconds=[d / 10 for d in durations],
                   n_bootstrap=200, seed=0)  # fmt: skip
    rec = EvalRecord(metrics=result.metrics, model=model, manifest=str(data / "manifests" / "test.jsonl"),
                     split="test", provenance={**PROVENANCE, "command": f"asr evaluate --model {model}"},
                     **record)  # fmt: skip
    write_score(result, out / "metrics.json", out / "per_utterance.csv", record=rec)
    with (out / "predictions.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "reference", "prediction", "prediction_raw", "duration", "decode_seconds"])
        for i, r, p, d in zip(ids, refs, preds, durations, strict=True):
            writer.writerow([i, r, p, (raw or {}).get(i, p), d, d / 10])
    return out
