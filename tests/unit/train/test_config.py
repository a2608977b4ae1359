"""Config loading: YAML + typed ``key=value`` overrides, unknown keys, and every shipped fine-tuning config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from asr.errors import ConfigError
from asr.models.registry import MODELS
from asr.train.finetune_config import FinetuneConfig, load_finetune_config
from asr.typed_config import dump_yaml, load_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


@dataclass
class Inner:
    r: int = 8
    names: list[str] | None = None
    mode: Literal["all", "decoder"] = "all"


@dataclass
class Outer:
    lr: float = 1e-3
    steps: int | None = None
    flag: bool = False
    factors: list[float] = field(default_factory=list)
    name: str = "base"
    inner: Inner = field(default_factory=Inner)


def _yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_then_yaml_then_overrides(tmp_path: Path) -> None:
    path = _yaml(tmp_path, "lr: 2.0e-4\nsteps: 10\ninner:\n  r: 4\n")
    cfg = load_config(Outer, path, ["steps=20", "inner.mode=decoder"])
    assert cfg.lr == pytest.approx(2e-4)
    assert cfg.steps == 20
    assert cfg.inner.r == 4 and cfg.inner.mode == "decoder"
    assert cfg.name == "base" and cfg.flag is False


@pytest.mark.parametrize(
    ("override", "attr", "expected"),
    [
        ("lr=1e-5", "lr", 1e-5),  # YAML 1.1 reads 1e-5 as a string: coerced by the annotation
        ("lr=3", "lr", 3.0),
        ("steps=1000", "steps", 1000),
        ("steps=null", "steps", None),
        ("flag=true", "flag", True),
        ("flag=False", "flag", False),
        ("flag=0", "flag", False),
        ("factors=[0.9, 1.0, 1.1]", "factors", [0.9, 1.0, 1.1]),
        ("factors=0.9,1.1", "factors", [0.9, 1.1]),
        ("factors=[]", "factors", []),
        ("name=123", "name", "123"),
        ("name=no", "name", "no"),  # stays a string, not YAML's boolean
    ],
)
def test_override_types(override: str, attr: str, expected: object) -> None:
    cfg = load_config(Outer, None, [override])
    value = getattr(cfg, attr)
    assert value == expected
    assert type(value) is type(expected)


def test_nested_override_list_and_types() -> None:
    cfg = load_config(Outer, None, ["inner.r=16", "inner.names=[q_proj, v_proj]"])
    assert cfg.inner.r == 16
    assert cfg.inner.names == ["q_proj", "v_proj"]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("steps=ten", "steps: expected an integer"),
        ("steps=1.5", "steps: expected an integer"),
        ("flag=maybe", "flag: expected true or false"),
        ("lr=fast", "lr: expected a number"),
        ("inner.mode=decodr", "did you mean 'decoder'"),
        ("factors=[a]", "factors[0]: expected a number"),
        ("lr", "expected key=value"),
        ("lr.x=1", "'lr' is not a section"),
    ],
)
def test_bad_values_are_config_errors(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(Outer, None, [override])


def test_unknown_key_lists_valid_keys_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(Outer, None, ["lrr=1"])
    text = str(err.value)
    assert "unknown key 'lrr'" in text and "did you mean 'lr'" in text
    assert "valid keys: lr, steps, flag, factors, name, inner" in text

    with pytest.raises(ConfigError, match=r"section inner.*unknown key 'rank'.*valid keys: r, names, mode"):
        load_config(Outer, None, ["inner.rank=4"])

    path = _yaml(tmp_path, "lr: 1.0\ninner:\n  rr: 2\n")
    with pytest.raises(
        ConfigError, match=rf"{path.name} \(section inner\): unknown key 'rr'; did you mean 'r'"
    ):
        load_config(Outer, path)


def test_yaml_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Outer, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(Outer, _yaml(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Outer, _yaml(tmp_path, "lr: [1, 2\n"))
    assert load_config(Outer, _yaml(tmp_path, "")) == Outer()


def test_dump_round_trip(tmp_path: Path) -> None:
    cfg = load_config(Outer, None, ["factors=[0.9,1.1]", "inner.names=[a]", "steps=5"])
    path = dump_yaml(cfg, tmp_path / "out.yaml", header="resolved\nsecond line")
    assert path.read_text(encoding="utf-8").startswith("# resolved\n# second line\n")
    assert load_config(Outer, path) == cfg


def test_finetune_validation_errors() -> None:
    with pytest.raises(ConfigError, match="multiple of eval_steps"):
        load_finetune_config(None, ["eval_steps=50", "save_steps=75"])
    with pytest.raises(ConfigError, match="warmup_ratio"):
        load_finetune_config(None, ["warmup_ratio=1.5"])
    with pytest.raises(ConfigError, match="speed_perturb"):
        load_finetune_config(None, ["speed_perturb=[0.9, 0]"])
    with pytest.raises(ConfigError, match="method: 'qlora' is not one of lora, full, decoder"):
        load_finetune_config(None, ["method=qlora"])
    with pytest.raises(ConfigError, match="did you mean 'learning_rate'"):
        load_finetune_config(None, ["learnin_rate=1e-4"])


def test_finetune_paths() -> None:
    cfg = load_finetune_config(None, ["data=prep", "test_manifest=/x/t.jsonl", "model=whisper-small"])
    assert cfg.manifest("train") == Path("prep/manifests/train.jsonl")
    assert cfg.manifest("test") == Path("/x/t.jsonl")
    assert cfg.resolved_output_dir() == Path("runs/whisper-small-lora")
    assert cfg.save_every == cfg.eval_steps


SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_one_lora_and_one_full_config_per_registered_model() -> None:
    names = {p.stem for p in SHIPPED}
    for model in MODELS:
        # `make finetune MODEL=<model> METHOD=lora` reads configs/<model>-lora.yaml
        assert f"{model}-lora" in names and f"{model}-full" in names, model
        if model.startswith("whisper-"):
            assert f"{model}-decoder" in names, model


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_config_parses_and_names_a_registered_model(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# ") and "finetune" in first, "each config opens with its launch command"
    cfg = load_finetune_config(path)
    assert isinstance(cfg, FinetuneConfig)
    assert cfg.model in MODELS
    assert path.stem == f"{cfg.model}-{cfg.method}"
    assert cfg.data == "runs/demo/data"
    if cfg.deepspeed:
        assert (CONFIGS.parent / cfg.deepspeed).is_file()
    # the Makefile's overrides resolve too
    cfg = load_finetune_config(path, ["data=runs/demo/data", f"output_dir=runs/{path.stem}"])
    assert cfg.resolved_output_dir() == Path(f"runs/{path.stem}")


def test_deepspeed_config_is_json() -> None:
    import json

    ds = json.loads((CONFIGS / "deepspeed" / "zero2.json").read_text(encoding="utf-8"))
    assert ds["zero_optimization"]["stage"] == 2
