"""One writer per output folder: a second command on the same output folder is refused at once.

The lock is an ``flock`` on a file under ``$ASR_HOME/locks`` named after the folder's resolved
path (nothing is written into the user's folder). The kernel drops it when the process ends,
so a killed command never leaves a stale lock. It is re-entrant within a process (a benchmark
that fine-tunes into a folder it already holds) and handed down to the processes it starts
(``$ASR_HELD_OUTPUT_LOCKS``: a command that runs a stage in a subprocess); ranks other than 0
of a distributed run rely on rank 0's lock.

>>> import tempfile
>>> out = Path(tempfile.mkdtemp()) / "run"
>>> with output_lock(out):
...     with output_lock(out):  # the same process may take it again
...         pass
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from asr.errors import ASRError
from asr.io import asr_home

_HELD: dict[Path, tuple[IO[str], int]] = {}
INHERITED = "ASR_HELD_OUTPUT_LOCKS"  # folders a parent process holds, for the processes it starts


def lock_file(out: Path) -> Path:
    """Where the lock of output folder ``out`` lives."""
    key = hashlib.sha256(str(Path(out).expanduser().resolve()).encode()).hexdigest()[:24]
    return asr_home() / "locks" / f"{key}.lock"


@contextmanager
def output_lock(out: str | Path) -> Iterator[None]:
    """Hold the lock of ``out`` inside the block; :class:`ASRError` if another process holds it."""
    out = Path(out).expanduser().resolve()
    inherited = os.environ.get(INHERITED, "").split(os.pathsep)
    if int(os.environ.get("RANK", "0") or 0) != 0 or str(out) in inherited:
        yield
        return
    if out in _HELD:
        handle, depth = _HELD[out]
        _HELD[out] = (handle, depth + 1)
    else:
        handle = _acquire(out)
        if handle is None:  # no writable $ASR_HOME: run unlocked rather than refuse the work
            yield
            return
        _HELD[out] = (handle, 1)
        os.environ[INHERITED] = os.pathsep.join(filter(None, [*inherited, str(out)]))
    try:
        yield
    finally:
        handle, depth = _HELD.pop(out)
        if depth > 1:
            _HELD[out] = (handle, depth - 1)
        else:
            handle.close()  # closing releases the flock
            held = os.environ.get(INHERITED, "").split(os.pathsep)
            os.environ[INHERITED] = os.pathsep.join(p for p in held if p and p != str(out))


def _acquire(out: Path) -> IO[str] | None:
    path = lock_file(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ASRError(
            f"{out}: another asr command is writing there ({holder}); wait for it to finish or choose "
            "another output folder"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle
