"""The fault matrix reuses the end-to-end fixtures: the prepared demo corpus, four of its clips, a
tiny Whisper and the fake Hub."""

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import demo_data, few_clips, tiny_whisper  # noqa: F401  (pytest fixtures)
from tests.e2e.test_export import fake_hub  # noqa: F401  (the loopback Hub, for the push kill)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """``small_disk(kb, read_only=False, full=False)``: a real tmpfs of that size (root only; skipped
    elsewhere); ``full``: a filler file takes all its space first."""
    mounts: list[Path] = []

    def mount(kb: int, read_only: bool = False, full: bool = False) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        options = f"size={kb}k" + (",ro" if read_only else "")
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
        mounts.append(where)
        if full:
            filler = (where / ".filler").open("wb", buffering=0)
            try:
                while filler.write(b"\0" * 4096):
                    pass
            except OSError:
                pass
            filler.close()
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture(scope="session")
def tiny_ct2(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    """The tiny Whisper as a CTranslate2 model folder (the source of ``asr import-ct2``)."""
    from asr.cli import main

    out = tmp_path_factory.mktemp("tiny-ct2") / "export"
    assert main(["export", "--checkpoint", str(tiny_whisper), "--out", str(out), "--ct2"]) == 0
    return out / "ct2"
