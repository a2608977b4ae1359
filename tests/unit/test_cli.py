"""What ``asr evaluate`` imports before it runs: only what the command needs.

A structural check of the module set (not of wall-clock time): the optional heavy packages
are imported by the code that uses them, never on the way to evaluate's arguments. One
subprocess importing torch and transformers' Whisper (about 3 s here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOT_NEEDED = ("matplotlib", "datasets", "funasr", "peft", "jieba", "ctranslate2", "pandas", "modelscope")
IMPORT_PATH = """
import argparse, importlib, json, sys
import asr.cli
module = importlib.import_module(asr.cli.COMMANDS["evaluate"][0])
module.add_arguments(argparse.ArgumentParser())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in {names})))
"""


def test_evaluate_imports_no_optional_heavy_package() -> None:
    code = IMPORT_PATH.format(names=set(NOT_NEEDED) | {"torch"})
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    assert "torch" in loaded  # the check sees what the recipe imports
    assert loaded & set(NOT_NEEDED) == set()
