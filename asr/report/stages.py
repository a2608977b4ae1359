"""Resumable benchmark stages: each stage folder holds ``stage.json`` with the settings its result
depends on and its status (``running``, ``done``, ``skipped``, ``failed``).

A ``done`` stage with the same settings is skipped; one with other settings is refused unless
``force`` (then its folder is removed and the stage runs again). A ``skipped`` or ``failed``
stage runs again (weights may have been added since); a ``running`` one continues (the work
itself resumes).
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from asr.errors import ASRError, ConfigError, ModelSourceError
from asr.io import read_json, write_json
from asr.report.rows import STAGE_FILE

log = logging.getLogger(__name__)


@dataclass
class Stage:
    """One unit of benchmark work and its record."""

    name: str  # e.g. "zero-shot/whisper-base"
    folder: Path
    model: str
    setting: str
    settings: dict[str, Any]
    command: str  # the standalone asr command that gives the same result
    invoked_by: str = ""
    status: str = "pending"
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        data = asdict(self)
        data["folder"] = str(self.folder)
        return data

    def save(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / STAGE_FILE, self.record())


def changed_settings(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Names of the settings that differ."""
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


def run_stage(stage: Stage, work: Callable[[], None], force: bool = False) -> Stage:
    """Run ``work`` for ``stage`` unless it is done with the same settings (see module docstring).

    A :class:`ModelSourceError` (weights not found) marks the stage ``skipped``, any other
    :class:`ASRError` ``failed``; both keep the reason, and the benchmark goes on.
    """
    path = stage.folder / STAGE_FILE
    old = read_json(path) if path.is_file() else None
    if isinstance(old, dict):
        changed = changed_settings(old.get("settings") or {}, stage.settings)
        if changed and not force:
            raise ConfigError(
                f"{stage.name} was run with other settings ({', '.join(changed)}) in {stage.folder}; "
                "pass --force to run it again with these"
            )
        if changed:
            log.warning(
                "%s: settings changed (%s); --force: starting it again", stage.name, ", ".join(changed)
            )
            shutil.rmtree(stage.folder)
        elif old.get("status") == "done":
            log.info("%s: done, skipped (%s)", stage.name, stage.folder)
            stage.status = "done"
            return stage
    stage.status, stage.reason = "running", ""
    stage.save()
    try:
        work()
        stage.status = "done"
    except ModelSourceError as err:
        stage.status, stage.reason = "skipped", f"weights not found: {str(err).splitlines()[0]}"
    except ASRError as err:
        stage.status, stage.reason = "failed", f"{type(err).__name__}: {str(err).splitlines()[0]}"
    if stage.status != "done":
        log.warning("%s: %s (%s)", stage.name, stage.status, stage.reason)
    stage.save()
    return stage


def stage_status(folder: Path) -> str | None:
    path = folder / STAGE_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("status")
    except (OSError, ValueError, AttributeError):
        return None
