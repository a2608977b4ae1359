"""The declared layer order holds: ``lint-imports`` checks pyproject.toml's import-linter contracts.

Skipped where import-linter is not installed (it comes with the ``dev`` extra, as in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[2]
RUN_LINT_IMPORTS = "from importlinter.cli import lint_imports_command; lint_imports_command()"


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return config["tool"]["importlinter"]["contracts"]


def test_import_contracts_are_kept() -> None:
    pytest.importorskip("importlinter", reason="import-linter is not installed (pip install -e '.[dev]')")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    result = subprocess.run(
        [sys.executable, "-c", RUN_LINT_IMPORTS, "--no-cache", "--no-logo", "pyproject.toml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


@pytest.mark.parametrize("package", ["asr", "asr.models"])
def test_every_module_has_a_layer(package: str) -> None:
    """A new module or subpackage of ``package`` must be placed in its layer order."""
    contract = next(
        c for c in _contracts() if c["type"] == "layers" and c.get("containers", ["asr"]) == [package]
    )
    prefix = "" if "containers" in contract else "asr."  # the top contract names modules in full
    placed = {name.strip() for layer in contract["layers"] for name in layer.split("|")}
    folder = ROOT.joinpath(*package.split("."))
    found = {f"{prefix}{p.stem}" for p in folder.glob("*.py") if p.stem != "__init__"}
    found |= {f"{prefix}{p.parent.name}" for p in folder.glob("*/__init__.py")}
    assert found - placed == set(), f"place these in the {contract['name']!r} contract (pyproject.toml)"
