"""The runs the speech-LLM e2e tests share: ``asr evaluate`` of a manifest, a 2-step LoRA ``asr finetune``,
a Fun-ASR-Nano export decoded by funasr alone."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from asr.cli import main
from asr.data.manifest import read_manifest

CONFIGS = Path(__file__).resolve().parents[2] / "asr" / "configs"
# short, quiet and fast: 2 LoRA steps at batch 2, validation on 2 clips, no zero-shot or bootstrap
SETTINGS = "max_steps=2 eval_steps=2 save_steps=2 batch_size=2 eval_batch_size=2 grad_accum=1 eval_limit=2"
QUIET = "num_workers=0 bootstrap=0 zero_shot=false warmup_ratio=0 logging_steps=1 patience=null lora.r=4"


def finetune_two_steps(config: str, model: Path, data: Path, run: Path) -> dict[str, Any]:
    """``asr finetune --config configs/<config>`` for 2 steps into ``run``; its summary.json."""
    overrides = [f"model={model}", f"data={data}", f"output_dir={run}", *SETTINGS.split(), *QUIET.split()]
    assert main(["finetune", "--config", str(CONFIGS / config), *overrides]) == 0
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 2
    return summary


def train_texts(data: Path) -> list[str]:
    """The normalized training transcripts of a prepared corpus (a tiny model's vocabulary)."""
    return [u.text_norm for u in read_manifest(data / "manifests" / "train.jsonl")]


def evaluate_rows(model: Path, manifest: Path, out: Path, *extra: str) -> list[dict[str, str]]:
    """``asr evaluate`` at batch 2 (no progress bar, no bootstrap); the rows of predictions.csv."""
    argv = ["evaluate", "--model", str(model), "--manifest", str(manifest), "--out", str(out)]
    assert main([*argv, "--batch-size", "2", "--no-progress", "--bootstrap", "0", *extra]) == 0
    with (out / "predictions.csv").open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


# The plain process: funasr only, as a user of the export would run it (in the folder: funasr reads
# llm_conf.init_param_path relative to the working directory).
PLAIN_FUNASR_DECODE = """
import json, sys
from funasr import AutoModel

# WavFrontend dithers by default (random features); the export is decoded without, as asr evaluate does
model = AutoModel(model=".", device="cpu", disable_update=True, hub="hf", frontend_conf={"dither": 0.0})
# The LLM in fp32 from the start, as asr evaluate runs it on CPU: funasr builds it in the config's
# llm_dtype (the release's bf16; the config file wins over a keyword) and casts it to fp32 only after
# embedding the first clip's prompt, which is then bf16-rounded.
model.model.llm.float()
texts = []
for path in sys.argv[1:]:
    res = model.generate(input=[path], language="中文", itn=False, max_length=512)
    texts.append(res[0]["text"])
print(json.dumps(texts, ensure_ascii=False))
"""


def plain_funasr_texts(export: Path, audios: list[Path]) -> list[str]:
    """What funasr's ``AutoModel`` alone (no code of ours importable) decodes from ``audios``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = subprocess.run(
        [sys.executable, "-c", PLAIN_FUNASR_DECODE, *(str(a) for a in audios)],
        capture_output=True,
        text=True,
        env={**env, "OMP_NUM_THREADS": "1"},
        cwd=export,
        check=True,
    )
    return json.loads(plain.stdout.splitlines()[-1])


def funasr_postprocess(text: str) -> str:
    """funasr's own post-processing of Fun-ASR-Nano's decoded tokens: /sil to a space, whitespace runs to one."""
    return re.sub(r"\s+", " ", text.replace("/sil", " "))
