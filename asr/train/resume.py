"""A fine-tuning run across restarts: the resume point (the last *complete* checkpoint), the
incomplete checkpoints dropped, the log cut back, the resolved ``config.yaml`` written.

The folder's layout is :class:`asr.run_dir.RunDir`'s.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from asr.errors import ConfigError
from asr.run_dir import RunDir, checkpoint_step
from asr.train.faults import checkpoint_problem
from asr.train.finetune_config import FinetuneConfig
from asr.train.reporting import TrainLog
from asr.typed_config import dump_yaml, read_yaml, to_dict

log = logging.getLogger(__name__)


def resume_point(out: Path, resume: bool) -> str | None:
    """The last complete checkpoint to resume from; an error when there is one and ``resume`` is off.

    A checkpoint cut short by a kill or a full disk while it was written (see
    :func:`~asr.train.faults.checkpoint_problem`) is skipped with a warning: the run resumes
    from the one before it, or from the beginning when there is none.
    """
    found = RunDir(out).checkpoints()
    if found and not resume:
        raise ConfigError(
            f"{out} already holds checkpoints ({found[0].name}): pass --resume to continue that run, "
            "or choose another output_dir"
        )
    for checkpoint in found:
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return str(checkpoint)
        log.warning(
            "--resume: skipping %s, an incomplete checkpoint (%s; the run was stopped while writing it)",
            checkpoint,
            problem,
        )
    if resume:
        log.warning("--resume: no complete checkpoint in %s; starting from the beginning", out)
    return None


def remove_incomplete_checkpoints(out: Path, checkpoint: str | None) -> None:
    """Delete the checkpoints newer than the resume point (all incomplete): the run writes them again."""
    start = checkpoint_step(checkpoint) if checkpoint else -1
    for folder in RunDir(out).checkpoints():
        if checkpoint_step(folder) > start:
            log.warning("removing the incomplete %s (the resumed run writes it again)", folder)
            shutil.rmtree(folder)


def _warn_config_changes(path: Path, resolved: FinetuneConfig) -> None:
    if not path.is_file():
        return
    before, now = read_yaml(path), to_dict(resolved)
    changed = sorted(k for k in now.keys() | before.keys() if before.get(k) != now.get(k))
    if changed:
        log.warning("resuming with a changed config: %s", ", ".join(changed))


def prepare_run_dir(out: Path, resolved: FinetuneConfig, checkpoint: str | None, train_log: TrainLog) -> None:
    """Drop incomplete checkpoints, cut the log back to the checkpoint (or drop a log without one);
    write ``config.yaml``."""
    config = RunDir(out).config_file
    remove_incomplete_checkpoints(out, checkpoint)
    if checkpoint:
        _warn_config_changes(config, resolved)
        train_log.truncate(checkpoint_step(checkpoint))
    elif train_log.path.exists():  # a run that died before its first checkpoint
        train_log.path.unlink()
    dump_yaml(
        resolved, config, header=f"resolved config of this run; rerun with:\nasr finetune --config {config}"
    )
