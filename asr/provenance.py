"""Provenance for every output file: toolkit version, git commit, libraries, command."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from asr import __version__


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The toolkit checkout's commit (with ``-dirty`` when modified), or None outside git."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def provenance() -> dict[str, Any]:
    """Versions and environment that produced a result."""
    # heavy: asr.provenance sits in the bottom layer, which must stay cheap to import
    import torch
    import transformers

    return {
        "toolkit": "cs-mage-asr",
        "toolkit_version": __version__,
        "git_commit": git_commit(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
