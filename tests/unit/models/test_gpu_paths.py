"""GPU-only settings checked without a GPU: the DeepSpeed config and CTranslate2's CUDA handling."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path
from typing import Any

import pytest

from asr.errors import ConfigError

DEEPSPEED = Path(__file__).resolve().parents[3] / "configs" / "deepspeed"
# transformers fills these "auto" values from model.config.hidden_size, which the Trainer's
# model (LossModule) does not have: DeepSpeed would fail before the first step.
HIDDEN_SIZE_KEYS = (
    "zero_optimization.reduce_bucket_size",
    "zero_optimization.stage3_prefetch_bucket_size",
    "zero_optimization.stage3_param_persistence_threshold",
)


def _get(config: dict[str, Any], dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def test_hidden_size_keys_match_transformers() -> None:
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    source = inspect.getsource(HfTrainerDeepSpeedConfig.trainer_config_finalize)
    block = source[source.index("hidden_size_based_keys") : source.index("]")]
    assert set(re.findall(r'"(zero_optimization\.\w+)"', block)) == set(HIDDEN_SIZE_KEYS)


@pytest.mark.parametrize("path", sorted(DEEPSPEED.glob("*.json")), ids=lambda p: p.name)
def test_deepspeed_configs_need_no_hidden_size(path: Path) -> None:
    config = json.loads(path.read_text(encoding="utf-8"))
    for key in HIDDEN_SIZE_KEYS:
        value = _get(config, key)
        assert value is None or (isinstance(value, int) and value > 0), f"{path.name}: {key} = {value!r}"


def test_zero2_buckets_are_deepspeed_defaults() -> None:
    config = json.loads((DEEPSPEED / "zero2.json").read_text(encoding="utf-8"))
    zero = config["zero_optimization"]
    assert zero["stage"] == 2
    assert zero["reduce_bucket_size"] == 500_000_000 and zero["allgather_bucket_size"] == 200_000_000


def test_cuda_library_errors_become_clear() -> None:
    from asr.models.whisper.ct2 import cuda_runtime_error

    err = RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")
    clear = cuda_runtime_error(err, "cuda:0")
    assert isinstance(clear, ConfigError)
    assert "--backend torch" in str(clear) and "nvidia-cublas-cu12" in str(clear)
    cudnn = OSError("Could not load library libcudnn_ops.so.9. Error: cannot open shared object file")
    assert isinstance(cuda_runtime_error(cudnn, "cuda"), ConfigError)
    assert cuda_runtime_error(err, "cpu") is None  # not a GPU run: leave it alone
    assert cuda_runtime_error(RuntimeError("out of memory"), "cuda:0") is None


def test_ct2_device_index() -> None:
    from asr.models.whisper.ct2 import _device_index, default_compute_type

    assert _device_index("cuda:3") == 3 and _device_index("cpu") == 0
    import torch

    assert _device_index(torch.device("cuda:1")) == 1
    assert default_compute_type(torch.device("cuda:1")) == "float16" and default_compute_type("cpu") == "int8"
