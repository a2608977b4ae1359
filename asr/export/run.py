"""``asr export`` as a function: checkpoint -> folder (weights, processor, card, run records) -> Hub.

The folder is built next to ``out`` (``.OUT.partial-XXXX``) and moved into place when complete,
so ``out`` holds either the previous export or the new one, never half of one. A previous export
(it has ``export_info.json``) is replaced; any other non-empty ``out`` is refused. What a killed
export leaves is tidied by the next one: its staging folder is removed, and a previous export it
had moved aside (``.OUT.old``) is put back, or dropped once the new one is in place.

>>> result = export(ExportOptions(Path("runs/w/best"), Path("runs/w/export"), push_to_hub="me/w"))  # doctest: +SKIP
>>> result.commit_url  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from huggingface_hub import get_token

from asr import hub
from asr.errors import ASRError
from asr.export.card import RUN_FILES, CardInfo, RunRecords, build_card
from asr.export.ct2 import QUANTIZATIONS, export_ct2
from asr.export.errors import ExportError
from asr.export.merge import (
    Checkpoint,
    check_no_pickles,
    export_adapter,
    export_merged,
    inspect_checkpoint,
)
from asr.io import check_output_dir, write_json
from asr.provenance import git_commit
from asr.run_dir import CURVE_FILE

log = logging.getLogger(__name__)

EXPORT_INFO = "export_info.json"
MODES = ("merged", "adapter")


@dataclass
class ExportOptions:
    """What ``asr export`` was asked to do (see ``recipes/export.py`` for the flags)."""

    checkpoint: Path
    out: Path
    mode: str = "merged"
    run_dir: Path | None = None  # default: the checkpoint's parent
    push_to_hub: str | None = None
    private: bool = False
    ct2: bool = False
    quantization: str = "float16"
    dry_run: bool = False
    command: str | None = None  # recorded in the card


@dataclass
class ExportResult:
    out: Path
    files: list[hub.UploadFile] = field(default_factory=list)
    merged_lora: bool = False
    commit_url: str | None = None
    plan: str | None = None  # the dry-run report


def _check_out(out: Path) -> None:
    """``out`` is a folder or nothing yet, and its parent (where the staging folder goes) is writable."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out} exists and is not a folder")
    try:
        check_output_dir(out.parent, what=f"--out {out}: folder")
    except ASRError as err:
        raise ExportError(str(err)) from None
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise ExportError(f"--out {out}: cannot replace it (no write permission on the folder)")


def _check_overlap(checkpoint: Path, out: Path) -> None:
    out_abs, ck = out.resolve(), checkpoint.resolve()
    if out_abs == ck or ck.is_relative_to(out_abs) or out_abs.is_relative_to(ck):
        raise ExportError(f"--out {out} overlaps the checkpoint {checkpoint}; choose another folder")


def _check_paths(ckpt: Checkpoint, out: Path) -> None:
    _check_overlap(ckpt.path, out)
    if out.is_dir() and any(out.iterdir()) and not (out / EXPORT_INFO).is_file():
        raise ExportError(
            f"--out {out} is not empty and holds no previous export ({EXPORT_INFO}); "
            "refusing to replace it: choose an empty or new folder"
        )


def _copy_run_records(records: RunRecords, staging: Path) -> bool:
    """training_curve.png at the top (the card embeds it); config/metrics/summary under run/.

    The copies carry no local paths: see :func:`_portable_record`. The run's own files are left alone.
    """
    if records.run_dir is None:
        return False
    if records.curve is not None:
        shutil.copyfile(records.curve, staging / CURVE_FILE)
    for name in RUN_FILES:
        src = records.run_dir / name
        if src.is_file():
            text = _portable_record(src, records.run_dir)
            if text is None:
                log.warning("%s is not valid %s: left out of the export's run/ folder", src, src.suffix[1:])
                continue
            (staging / "run").mkdir(exist_ok=True)
            (staging / "run" / name).write_text(text, encoding="utf-8")
    return records.curve is not None


# Keys of the run records that hold paths (config.yaml, summary.json and its "config", metrics_test.json).
_PATH_KEYS = frozenset(
    {
        "data",
        "output_dir",
        "train_manifest",
        "validation_manifest",
        "test_manifest",
        "deepspeed",
        "model",
        "best_dir",
        "best_checkpoint",
        "checkpoint",
        "manifest",
        "model_source",
    }
)


def _portable_path(value: str, run_dir: Path, *, only_absolute: bool = False) -> str:
    """A path inside the run folder relative to it (``.`` for the folder); an absolute one elsewhere as
    its basename; any other (a registry name, a path relative to the working folder) unchanged.

    ``only_absolute``: leave relative paths alone, also those inside the run folder.
    """
    path = Path(value).expanduser()
    if not value or (only_absolute and not path.is_absolute()):
        return value
    absolute = path if path.is_absolute() else Path.cwd() / path
    for base, candidate in ((run_dir.resolve(), absolute.resolve()), (run_dir.absolute(), absolute)):
        try:
            return candidate.relative_to(base).as_posix()
        except ValueError:
            continue
    return path.name if path.is_absolute() and path.name else value


def _portable_command(command: str, run_dir: Path) -> str:
    """A recorded command line with its absolute paths (bare, or as ``key=PATH``) made portable."""
    words = []
    for word in command.split(" "):
        key, sep, value = word.rpartition("=")
        if sep and (value.startswith(("/", "~")) or os.path.isabs(value)):
            word = f"{key}={_portable_path(value, run_dir)}"
        elif word.startswith(("/", "~")) or os.path.isabs(word):
            word = _portable_path(word, run_dir)
        words.append(word)
    return " ".join(words)


def _portable_values(obj: object, run_dir: Path) -> object:
    """``obj`` (a parsed record) with the paths under :data:`_PATH_KEYS` and in commands made portable."""
    if isinstance(obj, list):
        return [_portable_values(v, run_dir) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out: dict = {}
    for key, value in obj.items():
        if key in _PATH_KEYS and isinstance(value, str):
            # model: a registry name or Hub id stays; only a path on this machine is shortened
            out[key] = _portable_path(value, run_dir, only_absolute=key == "model")
        elif key == "command" and isinstance(value, str):
            out[key] = _portable_command(value, run_dir)
        else:
            out[key] = _portable_values(value, run_dir)
    return out


def _portable_record(src: Path, run_dir: Path) -> str | None:
    """The text of a run record (JSON or YAML) with local paths replaced; None when it does not parse."""
    text = src.read_text(encoding="utf-8", errors="replace")
    try:
        if src.suffix == ".json":
            data = _portable_values(json.loads(text), run_dir)
            return json.dumps(data, ensure_ascii=False, indent=2) + "\n"
        data = _portable_values(yaml.safe_load(text), run_dir)
    except (ValueError, yaml.YAMLError):
        return None
    header = ""
    for line in text.splitlines():  # the "# rerun with: asr finetune --config PATH" header
        if not line.startswith("#"):
            break
        header += _portable_command(line, run_dir) + "\n"
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=None)


def _merged_copy_for_ct2(ckpt: Checkpoint, staging: Path, quantization: str) -> None:
    """An adapter export's CTranslate2 copy, converted from merged weights in a temp dir (removed)."""
    with tempfile.TemporaryDirectory(prefix="asr-export-ct2-") as tmp:
        export_merged(ckpt, Path(tmp) / "merged")
        export_ct2(Path(tmp) / "merged", staging / "ct2", quantization, family=ckpt.family)


def _old_copy(out: Path) -> Path:
    """Where ``_replace`` moves the previous export while the new one is renamed into place."""
    return out.with_name(f".{out.name}.old")


def _replace(staging: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = _old_copy(out)
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
    staging.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _try_lock(fd: int) -> bool:
    """An exclusive, non-blocking flock on ``fd``; True where taken (or where flock does not exist)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no way to tell a live export from a dead one
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@contextmanager
def _staging_folder(out: Path) -> Iterator[Path]:
    """A fresh ``.OUT.partial-XXXX`` beside ``out``, locked while this process lives, removed at exit.

    The lock (flock on the folder) dies with the process, so a staging folder nobody holds was
    left by a killed export and is removed here.
    """
    for stale in sorted(out.parent.glob(f".{out.name}.partial-*")):
        if not stale.is_dir():
            continue
        fd = os.open(stale, os.O_RDONLY)
        try:
            if _try_lock(fd):
                log.warning("removing %s, left by an export that was killed", stale)
                shutil.rmtree(stale, ignore_errors=True)
        finally:
            os.close(fd)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would make the export private to its writer
    fd = os.open(staging, os.O_RDONLY)
    try:
        _try_lock(fd)
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        os.close(fd)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _recover_previous(out: Path) -> None:
    """A kill inside ``_replace`` leaves the previous export in ``.OUT.old``: put it back, or drop it
    when the new export did reach ``out``."""
    old = _old_copy(out)
    if not old.is_dir():
        return
    if out.exists():
        log.warning("removing %s, the previous export an interrupted export had replaced", old)
        shutil.rmtree(old, ignore_errors=True)
    else:
        log.warning("restoring %s from %s (an export was killed while replacing it)", out, old)
        old.rename(out)


def export(options: ExportOptions) -> ExportResult:
    """Export a checkpoint; push it when ``push_to_hub`` is set (only list it with ``dry_run``)."""
    if options.mode not in MODES:
        raise ExportError(f"unknown export mode {options.mode!r} ({', '.join(MODES)})")
    if options.quantization not in QUANTIZATIONS:
        raise ExportError(f"--quantization must be one of {', '.join(QUANTIZATIONS)}")
    token = None
    if options.push_to_hub is not None and not options.push_to_hub.strip():
        raise ExportError("--push-to-hub needs USER/REPO (it was empty, so nothing would be pushed)")
    if options.push_to_hub:
        hub.validate_repo_id(options.push_to_hub)  # before any work or network call
        if not options.dry_run:
            token = hub.resolve_token()
    out = Path(options.out).expanduser()
    _check_overlap(Path(options.checkpoint).expanduser(), out)  # before _check_out creates folders
    _check_out(out)  # before the checkpoint is read
    _recover_previous(out)
    ckpt = inspect_checkpoint(options.checkpoint)
    if options.ct2 and not ckpt.family_class.supports_ct2:
        raise ExportError(f"--ct2 is not supported for {ckpt.family} checkpoints ({ckpt.path}); drop --ct2")
    if options.mode == "adapter" and not ckpt.adapter:
        raise ExportError(
            f"{ckpt.path} holds full weights, not a LoRA adapter; drop --adapter-only to export them"
        )
    _check_paths(ckpt, out)
    run_dir = Path(options.run_dir).expanduser() if options.run_dir else ckpt.path.parent
    if options.run_dir and not run_dir.is_dir():
        raise ExportError(f"--run-dir {run_dir}: no such folder")
    records = RunRecords.load(run_dir)

    adapter_base, merged = None, False
    with _staging_folder(out) as staging:
        if options.mode == "adapter":
            adapter_base = export_adapter(ckpt, staging)
        else:
            merged = export_merged(ckpt, staging)
        if options.ct2:
            if options.mode == "adapter":
                _merged_copy_for_ct2(ckpt, staging, options.quantization)
            else:
                export_ct2(staging, staging / "ct2", options.quantization, family=ckpt.family)
        has_curve = _copy_run_records(records, staging)
        info = CardInfo(
            spec=ckpt.spec,
            mode=options.mode,
            lora=ckpt.adapter,
            repo_id=options.push_to_hub,
            adapter_base=adapter_base,
            ct2_quantization=options.quantization if options.ct2 else None,
            export_command=options.command,
        )
        build_card(info, records, has_curve=has_curve).save(staging / "README.md")
        write_json(
            staging / EXPORT_INFO,
            {
                "toolkit": "cs-mage-asr",
                "git_commit": git_commit(),
                "model": ckpt.spec.name,
                "family": ckpt.family,
                "base_model": ckpt.spec.hub_id,
                "mode": options.mode,
                "lora": ckpt.adapter,
                "lora_merged": merged,
                "adapter_base": adapter_base,
                "ct2_quantization": info.ct2_quantization,
            },
        )
        check_no_pickles(staging)
        _replace(staging, out)
    log.info("exported %s -> %s", ckpt.path, out)

    result = ExportResult(out=out, files=hub.upload_plan(out), merged_lora=merged)
    if options.push_to_hub:
        if options.dry_run:
            result.plan = hub.describe_plan(
                result.files, options.push_to_hub, options.private, bool(get_token())
            )
        else:
            assert token is not None
            result.commit_url = hub.push_folder(
                out, options.push_to_hub, token=token, private=options.private
            )
    return result
