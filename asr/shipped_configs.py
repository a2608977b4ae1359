"""The configs shipped as package data (``asr/configs``; ``configs/`` in a checkout links there).

A *schedule* (``configs/schedules/*.yaml``) is a set of settings applied on top of a fine-tuning
config as ``key=value`` overrides: the demo's (``make demo``, ``asr benchmark --demo-schedule``)
is :data:`DEMO_SCHEDULE`.

>>> schedule_overrides()[:2]
['lora.scope=decoder', 'num_epochs=6']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asr.typed_config import read_yaml

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
DEMO_SCHEDULE = CONFIG_DIR / "schedules" / "demo.yaml"


def schedule_overrides(path: Path = DEMO_SCHEDULE) -> list[str]:
    """A schedule's settings as ``key=value`` overrides in file order, a section's keys dotted (``lora.scope``)."""
    return _overrides(read_yaml(path))


def _overrides(data: dict[str, Any], prefix: str = "") -> list[str]:
    out: list[str] = []
    for key, value in data.items():
        if isinstance(value, dict):
            out += _overrides(value, f"{prefix}{key}.")
        else:  # JSON is YAML flow syntax, which the override parser reads back
            out.append(
                f"{prefix}{key}={value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)}"
            )
    return out
