"""Session fixtures for end-to-end tests: the prepared demo corpus and tiny random models."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr.cli import main
from asr.data.manifest import read_manifest, write_manifest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "demo" / "cs-mage-demo"


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo corpus prepared with ``asr prepare`` (v2 rule recomputed)."""
    out = tmp_path_factory.mktemp("demo-data")
    assert main(["prepare", "--data-root", str(DEMO), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def few_clips(demo_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four demo training clips as train, validation and test (an overfitting set)."""
    utts = read_manifest(demo_data / "manifests" / "train.jsonl")[:4]
    out = tmp_path_factory.mktemp("few-clips")
    for split in ("train", "validation", "test"):
        write_manifest(out / "manifests" / f"{split}.jsonl", utts)
    return out


@pytest.fixture(scope="session")
def tiny_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model_factory import build

    return build("whisper-tiny", tmp_path_factory.mktemp("tiny-whisper") / "model")
