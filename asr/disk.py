"""Failed writes explained: a full disk, a quota, a read-only folder, as one line naming the path.

Every command's boundary (:func:`asr.cli.run_recipe`) turns such an exception into
``error: PATH: no space left on device (12.3 MB free); ...`` and exit status 2.

>>> import errno
>>> write_failure(OSError(errno.ENOSPC, "No space left on device"))
'no space left on device'
>>> write_failure(ValueError("bad value")) is None
True
>>> write_failure(RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull })"))
'Error while serializing: IoError(Os { code: 28, kind: StorageFull }) (is the disk full?)'
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

_FULL_DISK_WORDS = (
    "no space left",
    "storagefull",
    "file write failed",
    "disk quota exceeded",
)  # torch, safetensors (their errors carry no errno)


def write_failure(err: BaseException) -> str | None:
    """The reason a write failed (``no space left on device``, ...), or None if ``err`` is no write failure."""
    if isinstance(err, OSError):
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            return "no space left on device" if err.errno == errno.ENOSPC else "disk quota exceeded"
        return err.strerror or str(err) or type(err).__name__
    text = str(err)
    if any(word in text.lower() for word in _FULL_DISK_WORDS):
        first = text.strip().splitlines()[0]
        return "no space left on device" if "space" in first.lower() else f"{first} (is the disk full?)"
    return None


def existing_parent(path: str | Path) -> Path:
    """``path`` itself when it exists, else its nearest existing parent (whose disk it would be on)."""
    path = Path(path)
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_space(folder: str | Path) -> str:
    """``"123.4 MB free"`` on the disk of ``folder`` (or of its nearest existing parent)."""
    try:
        free = shutil.disk_usage(existing_parent(folder)).free
    except OSError:
        return "free space unknown"
    return f"{free / 1e6:.1f} MB free"


def failed_write(err: BaseException) -> tuple[str, str | None] | None:
    """``(reason, path)`` for ``err`` or an exception it was raised from, None if no write failed."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        reason = write_failure(current)
        if reason is not None:
            return reason, getattr(current, "filename", None)
        current = current.__cause__ or current.__context__
    return None
