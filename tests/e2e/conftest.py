"""Session fixtures for end-to-end tests: the prepared demo corpus and tiny random models."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "cs-mage-demo"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo corpus prepared with ``asr prepare`` (v2 rule recomputed)."""
    out = tmp_path_factory.mktemp("demo-data")
    assert main(["prepare", "--data-root", str(DEMO), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models.whisper import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny-whisper") / "model")
