"""``asr benchmark``: the CS-Mage leaderboard in one run, stage by stage.

Stages, each a folder under ``out`` with its ``stage.json`` (:mod:`asr.report.stages`):

1. ``zero-shot/<model>``: every model on the test split (:func:`asr.workflows.zero_shot.evaluate_model`);
2. ``finetune/<model>-<method>``: the configured fine-tunes (:func:`asr.train.recipe.finetune`,
   which also evaluates the best checkpoint on the test split);
3. ``report/``: the leaderboard, plots and an HTML error report of every evaluation
   (:func:`asr.report.leaderboard.write_leaderboard`), rewritten on every run.

A model whose weights cannot be found is a ``skipped`` row with the reason; it is looked up
once per run, so each missing model costs one failed lookup.
"""

from __future__ import annotations

import logging
import shlex
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from asr.errors import ConfigError, ModelSourceError
from asr.io import sha256_file
from asr.models.registry import MODELS
from asr.models.sources import resolve
from asr.report.html import write_run_reports
from asr.report.rows import SETTINGS, ZERO_SHOT
from asr.report.stages import Stage, run_stage
from asr.run_dir import RunDir
from asr.shipped_configs import CONFIG_DIR
from asr.train.finetune_config import load_finetune_config
from asr.train.recipe import finetune
from asr.workflows.zero_shot import evaluate_model

log = logging.getLogger(__name__)

DEFAULT_FINETUNE = ("whisper-small:lora", "whisper-small:decoder", "paraformer-large:lora")
CONFIGS = CONFIG_DIR


@dataclass
class BenchmarkPlan:
    """What one ``asr benchmark`` run does."""

    data: Path
    out: Path
    models: list[str] = field(default_factory=lambda: list(MODELS))
    finetune: list[str] = field(default_factory=lambda: list(DEFAULT_FINETUNE))
    overrides: list[str] = field(default_factory=list)
    split: str = "test"
    device: str = "auto"
    beam_size: int = 1
    limit: int | None = None
    force: bool = False
    progress: bool = True
    invoked_by: str = ""
    configs: Path = CONFIGS

    @property
    def manifest(self) -> Path:
        return self.data / "manifests" / f"{self.split}.jsonl"

    def check(self) -> None:
        if not self.manifest.is_file():
            raise ConfigError(
                f"{self.data}: no {self.manifest.name} (prepare it with `asr prepare --out DIR`)"
            )
        for entry in self.finetune:
            model, _, method = entry.partition(":")
            if method not in SETTINGS:
                raise ConfigError(
                    f"--finetune {entry!r}: expected MODEL:METHOD, METHOD one of {', '.join(SETTINGS)}"
                )
            if not (self.configs / f"{model}-{method}.yaml").is_file():
                raise ConfigError(
                    f"--finetune {entry!r}: no config {self.configs / f'{model}-{method}.yaml'}"
                )


@cache
def weights_problem(model: str) -> str | None:
    """Why ``model``'s weights cannot be found (None when they can); looked up once per process."""
    try:
        resolve(model)
    except ModelSourceError as err:
        return str(err)
    return None


def _require_weights(model: str) -> None:
    problem = weights_problem(model)
    if problem:
        raise ModelSourceError(problem)


def _manifest_hashes(data: Path) -> dict[str, str]:
    return {
        name: sha256_file(data / "manifests" / f"{name}.jsonl")
        for name in ("train", "validation", "test")
        if (data / "manifests" / f"{name}.jsonl").is_file()
    }


def zero_shot_stage(plan: BenchmarkPlan, model: str) -> Stage:
    name = Path(model).name
    folder = plan.out / "zero-shot" / name
    settings = {"model": model, "manifest": str(plan.manifest.resolve()), "manifest_sha256": sha256_file(plan.manifest),
                "beam_size": plan.beam_size, "limit": plan.limit}  # fmt: skip
    command = shlex.join(["asr", "zero-shot", "--manifest", str(plan.manifest), "--out", str(folder.parent),
                          "--models", model, "--beam-size", str(plan.beam_size),
                          *(["--limit", str(plan.limit)] if plan.limit else [])])  # fmt: skip
    stage = Stage(f"zero-shot/{name}", folder, name, ZERO_SHOT, settings, command, plan.invoked_by)

    def work() -> None:
        _require_weights(model)
        evaluate_model(model, plan.manifest, folder, device=plan.device, limit=plan.limit,
                       beam_size=plan.beam_size, progress=plan.progress)  # fmt: skip

    return run_stage(stage, work, plan.force)


def finetune_stage(plan: BenchmarkPlan, entry: str) -> Stage:
    model, _, method = entry.partition(":")
    folder = plan.out / "finetune" / f"{model}-{method}"
    config = plan.configs / f"{model}-{method}.yaml"
    overrides = [f"data={plan.data}", f"output_dir={folder}", "zero_shot=false", *plan.overrides]
    settings = {"model": model, "method": method, "config_sha256": sha256_file(config), "overrides": plan.overrides,
                "data": str(plan.data.resolve()), "manifests_sha256": _manifest_hashes(plan.data)}  # fmt: skip
    command = shlex.join(
        ["asr", "finetune", "--config", str(config.relative_to(config.parents[1])), *overrides]
    )
    stage = Stage(f"finetune/{model}-{method}", folder, model, SETTINGS[method], settings, command,
                  plan.invoked_by, extra={"method": method})  # fmt: skip

    def work() -> None:
        _require_weights(model)
        cfg = load_finetune_config(config, overrides)
        if finetune(cfg, resume=bool(RunDir(folder).checkpoints())):
            write_run_reports(folder)

    return run_stage(stage, work, plan.force)


def run_benchmark(plan: BenchmarkPlan) -> list[Stage]:
    """Zero-shot and fine-tuning stages (the report is written by the caller from their folders)."""
    plan.check()
    stages = [zero_shot_stage(plan, model) for model in plan.models]
    stages += [finetune_stage(plan, entry) for entry in plan.finetune]
    return stages
