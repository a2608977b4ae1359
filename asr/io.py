"""Files the toolkit writes and reads back: atomic writes, JSON Lines, the cache home.

Every output goes through :func:`atomic_write` (temp file in the same folder, fsync,
rename), so a reader sees the old file or the new one, never half of one; a failed
write leaves no temp file behind.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> write_json(folder / "a.json", {"cer": 0.5})
>>> [row for _, row in iter_jsonl(write_text(folder / "b.jsonl", '{"id": 1}\\n\\n'))]
[{'id': 1}]
"""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from asr.errors import ASRError, DataError

_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def asr_home() -> Path:
    """``$ASR_HOME`` (default ``~/.cache/cs-mage-asr``): imported weights, converted models, caches."""
    return Path(os.environ.get("ASR_HOME", Path.home() / ".cache" / "cs-mage-asr")).expanduser()


def _remove_orphans(path: Path) -> None:
    """Delete temp files of earlier writes to ``path`` whose process is gone (killed before the rename)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            tmp.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one of another user counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temp file beside ``path``; on success it replaces ``path``, on error it is removed.

    ``mode`` is ``"w"`` (text, UTF-8 unless ``encoding`` is given) or ``"wb"``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_orphans(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make outputs private to their writer
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        if err.filename is None and err.errno in _WRITE_ERRNOS:  # write() and close() name no file
            raise OSError(err.errno, err.strerror, str(path)) from err
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Create ``path`` if needed and prove it writable, before any work; a clear error if not."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ASRError(f"{what} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ASRError(f"{what} {path}: cannot write there ({err.strerror or err})") from None
    return path


def check_output_file(path: str | os.PathLike, what: str = "--out") -> Path:
    """The folder of an output file must be writable and the path must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise ASRError(f"{what} {path}: is a folder; give a file name")
    check_output_dir(path.parent, what=f"{what} {path}: folder")
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_text(path: str | os.PathLike, text: str, newline: str | None = "") -> Path:
    """Write UTF-8 text atomically (``newline=""``: line endings as given)."""
    with atomic_write(path, "w", newline=newline) as handle:
        handle.write(text)
    return Path(path)


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_write(path, "wb") as handle:
        handle.write(data)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON atomically: UTF-8, not ASCII-escaped, indented, with a final newline."""
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2, default=str) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    """Parse a JSON file; a missing, undecodable or malformed file is a :class:`DataError`."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise DataError(f"{path}, line {err.lineno}: invalid JSON ({err.msg})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def iter_jsonl(path: str | os.PathLike, *, skip_torn: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line.

    Bad JSON or a non-object line is a :class:`DataError` naming the file and line, except
    with ``skip_torn`` (logs written as training goes), where such lines are passed over:
    a kill can cut the last line.
    """
    path = Path(path)
    try:
        handle = path.open(encoding="utf-8-sig")  # a BOM is not JSON
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from err
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as err:
                    if skip_torn:
                        continue
                    raise DataError(f"{path}:{number}: invalid JSON ({err.msg})") from err
                if not isinstance(obj, dict):
                    if skip_torn:
                        continue
                    raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
                yield number, obj
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def write_jsonl(path: str | os.PathLike, rows: Any) -> Path:
    """Write dicts as JSON Lines (UTF-8, not ASCII-escaped) atomically."""
    with atomic_write(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
    return Path(path)
