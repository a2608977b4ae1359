"""Config loading: YAML + typed ``key=value`` overrides, unknown keys, and every shipped fine-tuning config."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from asr.errors import ConfigError
from asr.models.registry import MODELS, family_class, get_spec
from asr.train.finetune_config import FinetuneConfig, load_finetune_config
from asr.typed_config import dump_yaml, load_config, read_yaml

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


SHIPPED = sorted(p for p in CONFIGS.glob("*.yaml") if not p.name.startswith("_"))  # _*.yaml: shared bases


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


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_config_numbers_agree_with_the_registry(path: Path) -> None:
    """Per-model numbers are written in the model's file and must be the registry's; the family
    accepts the file's model_options."""
    cfg = load_finetune_config(path)
    spec = MODELS[cfg.model]
    assert (cfg.batch_size, cfg.eval_batch_size) == (spec.train_batch_size, spec.eval_batch_size)
    assert cfg.learning_rate == spec.learning_rate[cfg.method]
    family_class(spec.family).train_options(cfg.model_options)


def test_shipped_configs_state_only_their_differences() -> None:
    """Each model file holds its deltas; what all of them share lives in a base file."""
    own = {path.stem: set(read_yaml(path)) - {"base"} for path in SHIPPED}
    shared = set.intersection(*own.values())
    assert shared == {"model", "method", "batch_size", "eval_batch_size", "learning_rate"}


def test_base_file_chain(tmp_path: Path) -> None:
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "root.yaml").write_text(
        "lr: 0.5\ninner:\n  r: 4\n  mode: decoder\n", encoding="utf-8"
    )
    (tmp_path / "common" / "mid.yaml").write_text("base: root.yaml\nsteps: 3\n", encoding="utf-8")
    (tmp_path / "run.yaml").write_text("base: common/mid.yaml\ninner:\n  r: 16\n", encoding="utf-8")
    cfg = load_config(Outer, tmp_path / "run.yaml", ["flag=true"])
    assert (cfg.lr, cfg.steps, cfg.flag, cfg.inner.r, cfg.inner.mode) == (0.5, 3, True, 16, "decoder")
    (tmp_path / "common" / "root.yaml").write_text("base: ../run.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="a cycle"):
        load_config(Outer, tmp_path / "run.yaml")
    (tmp_path / "lost.yaml").write_text("base: nowhere.yaml\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nowhere\.yaml: config file not found"):
        load_config(Outer, tmp_path / "lost.yaml")


def test_model_options_are_the_family_s() -> None:
    cfg = load_finetune_config(
        None, ["model_options.audio_context=AUTO", "model_options.freeze_cross_kv=true"]
    )
    assert cfg.model_options == {"audio_context": "AUTO", "freeze_cross_kv": True}
    whisper = family_class(get_spec(cfg.model).family)
    options = whisper.train_options(cfg.model_options)
    assert (options.audio_context, options.consistency_weight, options.freeze_cross_kv) == ("auto", 0.0, True)
    with pytest.raises(
        ConfigError, match="model_options: unknown key 'audio_contxt'; did you mean 'audio_context'"
    ):
        whisper.train_options({"audio_contxt": "auto"})
    with pytest.raises(ConfigError, match="audio_context must be full, auto or seconds"):
        whisper.train_options({"audio_context": "short"})
    with pytest.raises(ConfigError, match=r"model_options\.consistency_weight must be >= 0"):
        whisper.train_options({"consistency_weight": -1})
    with pytest.raises(ConfigError, match="the funasr family has no options of its own, got audio_context"):
        family_class("funasr").train_options({"audio_context": "auto"})


def test_a_top_level_model_option_points_to_its_new_place(tmp_path: Path) -> None:
    """Configs from before model_options: refused, naming where the key lives now."""
    with pytest.raises(ConfigError, match=r"'freeze_cross_kv' is a model option now \(whisper family\).*"
                       r"model_options.freeze_cross_kv="):  # fmt: skip
        load_finetune_config(None, ["freeze_cross_kv=true"])
    old = tmp_path / "old.yaml"
    old.write_text("model: whisper-small\naudio_context: auto\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"{old}: 'audio_context' is a model option now")):
        load_finetune_config(old)
    with pytest.raises(
        ConfigError, match="unknown key 'audio_contxt'"
    ):  # not an option anywhere: the usual error
        load_finetune_config(None, ["audio_contxt=auto"])


def test_deepspeed_config_is_json() -> None:
    import json

    ds = json.loads((CONFIGS / "deepspeed" / "zero2.json").read_text(encoding="utf-8"))
    assert ds["zero_optimization"]["stage"] == 2
