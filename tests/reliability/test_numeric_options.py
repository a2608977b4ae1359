"""Every numeric option of every command is range-checked while parsing (issue 21).

Zero, negative, NaN and infinite values are refused as one ``error: argument ...`` line with
exit status 2, before the command writes anything (a corrected rerun is never blocked).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from asr.arguments import RangeType
from asr.cli import COMMANDS, main

NOT_NUMERIC = (str, Path)  # every other ``type=`` must be a range-checked number


def _numeric_actions() -> list[tuple[str, argparse.Action]]:
    found = []
    for name, (module, _help) in COMMANDS.items():
        parser = argparse.ArgumentParser()
        importlib.import_module(module).add_arguments(parser)
        found += [
            (name, a) for a in parser._actions if a.type in (int, float) or isinstance(a.type, RangeType)
        ]
    return found


NUMERIC = _numeric_actions()


def _exit_code(argv: list[str]) -> int:
    """``asr ARGV``'s exit status (argparse exits from inside ``main`` on a bad option)."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_no_command_parses_a_number_without_a_range() -> None:
    plain = [f"asr {name} {a.option_strings[0]}" for name, a in NUMERIC if not isinstance(a.type, RangeType)]
    assert plain == [], "use a type from asr.arguments"
    assert len(NUMERIC) >= 20  # the commands' numeric options were found at all


@pytest.mark.parametrize(
    ("command", "action"), NUMERIC, ids=[f"{n}{a.option_strings[0]}" for n, a in NUMERIC]
)
def test_out_of_range_values_are_refused(command: str, action: argparse.Action) -> None:
    kind: RangeType = action.type
    bad = ["nan", "inf", "-inf", "x"]
    if kind.low is not None:
        bad.append(str(kind.low) if kind.low_open else str(kind.low - 1))
    if kind.high is not None:
        bad.append(str(kind.high + 1))
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match="must be"):
            kind(text)


def test_a_negative_batch_size_stops_evaluate_before_any_file(tmp_path: Path, capsys) -> None:
    out = tmp_path / "eval"
    code = _exit_code(["evaluate", "--model", "whisper-base", "--manifest", str(tmp_path / "m.jsonl"),
                 "--out", str(out), "--batch-size", "-1"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert "argument --batch-size: must be a whole number >= 1, not '-1'" in err
    assert not out.exists()


@pytest.mark.parametrize("value", ["nan", "-5", "0", "inf"])
def test_max_tokens_per_second_must_be_a_positive_finite_number(tmp_path: Path, capsys, value: str) -> None:
    code = _exit_code(["evaluate", "--model", "whisper-base", "--manifest", str(tmp_path / "m.jsonl"),
                 "--out", str(tmp_path / "o"), "--max-tokens-per-second", value])  # fmt: skip
    assert code == 2
    assert "argument --max-tokens-per-second: must be a finite number > 0" in capsys.readouterr().err


def test_segment_first_video_must_be_positive(tmp_path: Path, capsys) -> None:
    assert _exit_code(["segment", "--out", str(tmp_path / "c"), "--first-video", "-3"]) == 2
    assert "argument --first-video: must be a whole number >= 1, not '-3'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def _config_numbers() -> list[str]:
    """Every numeric key of a fine-tuning config (``asr finetune KEY=VALUE``, YAML, benchmark --overrides)."""
    import dataclasses
    import typing

    from asr.train.finetune_config import FinetuneConfig, LoraSettings

    keys = []
    for cls, prefix in ((FinetuneConfig, ""), (LoraSettings, "lora.")):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kinds = set(typing.get_args(hints[f.name])) or {hints[f.name]}
            if kinds & {int, float}:
                keys.append(prefix + f.name)
    return keys


CONFIG_NUMBERS = _config_numbers()


@pytest.mark.parametrize("key", [*CONFIG_NUMBERS, "speed_perturb"])
def test_every_numeric_config_key_refuses_a_negative_value(key: str, tmp_path: Path) -> None:
    from asr.errors import ConfigError
    from asr.train.finetune_config import load_finetune_config

    value = "[-1.0]" if key == "speed_perturb" else "-1"
    base = [f"model={tmp_path}", f"data={tmp_path}", f"output_dir={tmp_path / 'run'}"]
    with pytest.raises(ConfigError, match=key.split(".")[-1]):
        load_finetune_config(None, [*base, f"{key}={value}"])
    assert len(CONFIG_NUMBERS) >= 20  # the keys were found at all
