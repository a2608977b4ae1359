"""``make gpu-wheelhouse PY=3.12``: every wheel ``tools.gpu_check`` needs beyond the host's own
Python, torch, transformers, peft and accelerate (and what those bring: numpy, PyYAML, tqdm,
safetensors, huggingface_hub, regex, tokenizers), for one Python version, in one folder.

    python -m tools.gpu_wheelhouse --python-version 3.12 --out wheelhouse/py3.12

On the host (offline)::

    pip install --no-index --no-deps --target gpu-deps wheelhouse/py3.12/*.whl
    PYTHONPATH=gpu-deps python3 -m tools.gpu_check --out runs/gpu-check

Binary wheels are downloaded for ``--platform`` (manylinux x86_64 by default) and that Python;
the pure-Python packages published only as sources (jieba, openai-whisper) are built here into
``py3-none-any`` wheels. The pins are pyproject.toml's and constraints.txt's. The total must fit
``--max-mib`` (60: the upload); the sizes go to ``wheelhouse.json`` beside the wheels.
Needs the network (PyPI) and pip.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the check imports that a host with torch, transformers, peft and accelerate lacks:
# audio reading (soundfile and its cffi), the tokenizer assets and BPE reader of Whisper,
# the metrics (rapidfuzz, jieba) and the text normalizer (OpenCC), resampling (soxr).
# The training curve of the fine-tuning recipe needs matplotlib and its dependencies.
PACKAGES = (
    "soundfile", "cffi", "pycparser", "openai-whisper", "tiktoken", "rapidfuzz", "jieba", "OpenCC", "soxr",
    "matplotlib", "contourpy", "cycler", "fonttools", "kiwisolver", "pillow", "pyparsing", "python-dateutil", "six",
)  # fmt: skip
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def pins() -> dict[str, str]:
    """``name -> version`` from constraints.txt, then pyproject.toml (lower-case names)."""
    found: dict[str, str] = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        name, sep, version = line.strip().partition("==")
        if sep and not name.startswith("#"):
            found[name.lower()] = version
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    for m in re.finditer(r'"([A-Za-z0-9_.\-]+)==([^";\s]+)"', pyproject):
        found[m[1].lower()] = m[2]
    return found


def pip(*args: str, quiet: bool = False) -> None:
    """``pip ARGS`` with this Python; ``quiet``: its complaints are not shown (an expected failure)."""
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args]
    subprocess.run(command, check=True, stderr=subprocess.DEVNULL if quiet else None)


def download(requirement: str, out: Path, python_version: str, platforms: tuple[str, ...]) -> None:
    """A wheel of ``requirement`` for that Python and platform; a pure-Python wheel built from the
    source distribution where PyPI has no wheel."""
    target = ["--python-version", python_version, "--implementation", "cp"]
    target += [arg for p in platforms for arg in ("--platform", p)]
    try:
        pip("download", "--no-deps", "--only-binary=:all:", *target, "-d", str(out), requirement, quiet=True)
        return
    except subprocess.CalledProcessError:
        pass  # no wheel for that Python: a source distribution
    with tempfile.TemporaryDirectory() as tmp:
        pip("download", "--no-deps", "--no-binary=:all:", "-d", tmp, requirement)
        sdist = next(Path(tmp).iterdir())
        pip("wheel", "--no-deps", "-w", tmp, str(sdist))
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1 or not wheels[0].name.endswith("-none-any.whl"):
            raise SystemExit(
                f"error: {requirement}: no wheel for Python {python_version}, and not pure Python"
            )
        shutil.move(str(wheels[0]), out / wheels[0].name)


def build(out: Path, python_version: str, platforms: tuple[str, ...] = PLATFORMS) -> dict[str, object]:
    """Fill ``out`` (emptied first) with the wheels; returns what ``wheelhouse.json`` records."""
    versions = pins()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    for name in PACKAGES:
        download(f"{name}=={versions[name.lower()]}", out, python_version, platforms)
    sizes = {w.name: w.stat().st_size for w in sorted(out.glob("*.whl"))}
    return {
        "python_version": python_version,
        "platforms": list(platforms),
        "wheels": sizes,
        "total_mib": round(sum(sizes.values()) / 2**20, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.gpu_wheelhouse", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--python-version", default=f"{sys.version_info.major}.{sys.version_info.minor}")
    parser.add_argument("--out", type=Path, default=None, help="default wheelhouse/pyX.Y")
    parser.add_argument("--platform", nargs="+", default=list(PLATFORMS))
    parser.add_argument("--max-mib", type=float, default=60.0)
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        print(f"error: --python-version {args.python_version}: expected 3.N, e.g. 3.12", file=sys.stderr)
        return 2
    out = args.out or REPO / "wheelhouse" / f"py{args.python_version}"
    info = build(out, args.python_version, tuple(args.platform))
    (out / "wheelhouse.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    print(f"gpu-wheelhouse: {len(info['wheels'])} wheels, {info['total_mib']} MiB in {out}")
    if info["total_mib"] > args.max_mib:
        print(
            f"error: the wheelhouse is {info['total_mib']} MiB, over --max-mib {args.max_mib}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
