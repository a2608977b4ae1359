"""benchmarks/markdown.py: a benchmark rewrites its own marked section of BENCHMARKS.md, stamped with a clean commit."""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

import pytest

from benchmarks import markdown
from benchmarks.markdown import DirtyTree, begin_marker, clean_commit, end_marker, replace_section

DOCUMENT = """# Benchmarks

## Inference

Prose above the numbers.

<!-- benchmark:inference -->
old inference table
<!-- /benchmark:inference -->

Reading (of the run above).

## Inference of a fine-tuned model

<!-- benchmark:inference-finetuned -->
the fine-tuned table
<!-- /benchmark:inference-finetuned -->

## Fine-tuning at short context

A hand-made section without markers.
"""


def test_a_section_is_replaced_in_place_and_the_others_are_untouched() -> None:
    new = replace_section(DOCUMENT, "inference", "new inference table\n", "Inference")
    assert new == DOCUMENT.replace("old inference table", "new inference table")
    # a name that is a prefix of another's is not confused with it
    new = replace_section(DOCUMENT, "inference-finetuned", "new", "Inference of a fine-tuned model")
    assert new == DOCUMENT.replace("the fine-tuned table", "new")


def test_a_missing_section_is_appended_under_its_title() -> None:
    new = replace_section(DOCUMENT, "scoring", "the scoring table", "Scoring")
    assert new.startswith(DOCUMENT)
    assert new[len(DOCUMENT) :] == (
        "\n## Scoring\n\n<!-- benchmark:scoring -->\nthe scoring table\n<!-- /benchmark:scoring -->\n"
    )
    assert replace_section("", "scoring", "t", "Scoring").startswith("# Benchmarks\n\n## Scoring\n")


def test_broken_markers_are_errors_not_guesses() -> None:
    with pytest.raises(ValueError, match="appears 2 times"):
        replace_section(DOCUMENT + begin_marker("inference"), "inference", "x", "Inference")
    with pytest.raises(ValueError, match="no closing"):
        replace_section(DOCUMENT.replace(end_marker("inference"), ""), "inference", "x", "Inference")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    (tmp_path / "BENCHMARKS.md").write_text("# Benchmarks\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    return tmp_path


def test_only_a_clean_checkout_is_stamped(checkout: Path) -> None:
    commit = clean_commit(checkout)
    assert len(commit) == 10 and "dirty" not in commit
    (checkout / "BENCHMARKS.md").write_text("# Benchmarks\n\nwritten by a benchmark\n")
    assert clean_commit(checkout) == commit  # what benchmarks write themselves does not count
    (checkout / "code.py").write_text("x = 2\n")
    with pytest.raises(DirtyTree, match=r"uncommitted changes .*code\.py.*--no-write"):
        clean_commit(checkout)
    _git(checkout, "checkout", "code.py")
    (checkout / "new.py").write_text("")
    with pytest.raises(DirtyTree, match=r"new\.py"):
        clean_commit(checkout)


def test_no_commit_outside_git(tmp_path: Path) -> None:
    with pytest.raises(DirtyTree, match="not a git checkout"):
        clean_commit(tmp_path)


def _args(tmp_path: Path, no_write: bool = False) -> argparse.Namespace:
    return argparse.Namespace(no_write=no_write, section="toy", out_md=tmp_path / "B.md")


def _render(result: dict) -> str:
    return f"| a |\n|---|\n| {result['a']} |"


def test_publish_saves_json_and_rewrites_the_section_from_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(markdown, "checkout_state", lambda root=None: ("0123456789", []))
    (tmp_path / "B.md").write_text(DOCUMENT)
    markdown.publish(_args(tmp_path), "toy", "Toy", {"a": 1}, _render, command="python -m benchmarks.toy")
    first = (tmp_path / "B.md").read_text()
    assert first.startswith(DOCUMENT) and "| 1 |" in first
    assert "Command: `python -m benchmarks.toy`" in first
    assert "at commit `0123456789` on " in first and " cores" in first and "torch " in first
    record = json.loads((tmp_path / "results" / "toy.json").read_text())
    assert record["result"] == {"a": 1} and record["provenance"]["commit"] == "0123456789"

    markdown.publish(_args(tmp_path), "toy", "Toy", {"a": 2}, _render, command="python -m benchmarks.toy")
    second = (tmp_path / "B.md").read_text()
    assert second == first.replace("| 1 |", "| 2 |")  # rewritten, not appended
    assert second.count("## Toy") == 1


def test_a_dirty_tree_writes_nothing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(markdown, "checkout_state", lambda root=None: ("0123456789", [" M asr/x.py"]))
    (tmp_path / "B.md").write_text(DOCUMENT)
    with pytest.raises(DirtyTree):
        markdown.check_writable(_args(tmp_path))
    with pytest.raises(DirtyTree):
        markdown.publish(_args(tmp_path), "toy", "Toy", {"a": 1}, _render, command="c")
    assert (tmp_path / "B.md").read_text() == DOCUMENT and not (tmp_path / "results").exists()
    markdown.check_writable(_args(tmp_path, no_write=True))  # printing only needs no commit
    record = markdown.publish(_args(tmp_path, no_write=True), "toy", "Toy", {"a": 1}, _render, command="c")
    assert (tmp_path / "B.md").read_text() == DOCUMENT and not (tmp_path / "results").exists()
    assert "at commit `0123456789` plus uncommitted changes on " in markdown.render_record(record, _render)


def test_a_second_section_of_one_script_gets_its_own_heading(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(markdown, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(markdown, "checkout_state", lambda root=None: ("0123456789", []))
    args = _args(tmp_path)
    for section in ("toy", "toy-large"):
        args.section = section
        markdown.publish(args, "toy", "Toy", {"a": 1}, _render, command="c")
    text = (tmp_path / "B.md").read_text()
    assert text.startswith("# Benchmarks\n\n## Toy\n\n<!-- benchmark:toy -->\n")
    assert "\n## Toy (toy-large)\n\n<!-- benchmark:toy-large -->\n" in text
