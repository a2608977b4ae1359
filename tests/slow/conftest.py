"""The real-size tier: replicas of the published checkpoints (random weights, real shapes).

``huge`` tests (Whisper large-v3 and large-v3-turbo: 10-40 minutes each on 2 CPU cores) are
deselected unless the marker expression names them (``-m huge``, ``-m "slow or huge"``) or
``ASR_TEST_HUGE=1`` is set; ``make test-real-size`` runs them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    # also listed in pyproject.toml; registering here keeps --strict-markers happy either way
    config.addinivalue_line("markers", "huge: real-size tests of the largest models (make test-real-size)")


def huge_enabled(config: pytest.Config) -> bool:
    return os.environ.get("ASR_TEST_HUGE") == "1" or "huge" in (config.option.markexpr or "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if huge_enabled(config):
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("huge") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo corpus prepared once, plus small validation/test manifests."""
    from asr.cli import main

    out = tmp_path_factory.mktemp("demo-data")
    assert main(["prepare", "--data-root", str(REPO / "demo" / "cs-mage-demo"), "--out", str(out)]) == 0
    manifests = out / "manifests"
    for split, n in (("test", 2), ("validation", 2)):
        lines = (manifests / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()[:n]
        (out / f"{split}-{n}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def replicas_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``ASR_MODELS_DIR`` for the session: each test writes its replica into ``<dir>/<name>``."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(autouse=True)
def _free_disk(request: pytest.FixtureRequest, tmp_path: Path, replicas_dir: Path) -> Iterator[None]:
    """A real-size test leaves several GiB (replica, checkpoints, exports): remove them after it."""
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "name" in callspec.params:
        shutil.rmtree(replicas_dir / callspec.params["name"], ignore_errors=True)
