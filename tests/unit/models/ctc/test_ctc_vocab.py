import json

import pytest
import torch

from asr.errors import ConfigError, ModelSourceError
from asr.models.ctc.model import resize_vocab
from asr.models.ctc.vocab import (
    build_vocab,
    extended_vocab,
    grow_lm_head,
    make_tokenizer,
    text_ids,
    unknown_characters,
)
from asr.models.sources import detect_family
from tests.model_factory import build


def test_build_vocab_uses_normalized_characters() -> None:
    vocab = build_vocab(["长沙话，好恰！", "ＯＫ la 2024年", "A-b?"])
    assert list(vocab) == [
        "<pad>",
        "<unk>",
        "|",
        "0",
        "2",
        "4",
        "a",
        "b",
        "k",
        "l",
        "o",
        *sorted("长沙话好恰年"),
    ]
    assert list(vocab.values()) == list(range(len(vocab)))
    assert vocab["<pad>"] == 0  # the CTC blank


def test_build_vocab_of_no_text_has_only_specials() -> None:
    assert build_vocab(["", "！？…"]) == {"<pad>": 0, "<unk>": 1, "|": 2}


def test_unknown_characters_are_counted_after_normalization() -> None:
    vocab = build_vocab(["长沙话"])
    counts = unknown_characters(["长沙话好咯，好！", "Ｈi 好"], vocab)
    assert counts == {"好": 3, "h": 1, "i": 1, "咯": 1}
    assert list(counts) == ["好", "h", "i", "咯"]  # most frequent first, then by character
    assert unknown_characters(["长沙。"], vocab) == {}


def test_text_ids_map_unknown_to_unk_or_drop_them() -> None:
    vocab = build_vocab(["长沙ok"])
    assert text_ids("长沙，OK好", vocab, vocab["<unk>"]) == [vocab[c] for c in "长沙ok"] + [vocab["<unk>"]]
    assert text_ids("长沙好", vocab, None) == [vocab["长"], vocab["沙"]]


def test_upper_case_vocabularies_match_normalized_letters() -> None:
    vocab = {"<pad>": 0, "<unk>": 1, "A": 2, "B": 3}
    assert text_ids("ab", vocab, 1) == [2, 3]
    assert unknown_characters(["abc"], vocab) == {"c": 1}


def test_extended_vocab_appends_after_existing_ids() -> None:
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "长": 5}
    new, added = extended_vocab(vocab, ["长沙话", "沙"])
    assert added == ["沙", "话"]
    assert new == {**vocab, "沙": 6, "话": 7}
    assert extended_vocab(new, ["长沙"]) == (new, [])


def test_make_tokenizer_keeps_the_special_tokens_of_the_template() -> None:
    template = make_tokenizer({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "长": 5})
    assert template.bos_token is None and len(template) == 6  # no <s>/</s> ids beyond the head
    real = make_tokenizer({"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}, like=template)
    assert real.pad_token_id == 0 and real.unk_token_id == 3 and real.word_delimiter_token == "|"


def test_grow_lm_head_keeps_old_rows_and_starts_new_rows_at_their_mean() -> None:
    class Head(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm_head = torch.nn.Linear(4, 3)
            self.config = type("Config", (), {"vocab_size": 3})()

    torch.manual_seed(0)
    model = Head()
    old_w, old_b = model.lm_head.weight.detach().clone(), model.lm_head.bias.detach().clone()
    assert grow_lm_head(model, 5) == 2
    assert model.lm_head.weight.shape == (5, 4) and model.config.vocab_size == 5
    torch.testing.assert_close(model.lm_head.weight[:3], old_w)
    torch.testing.assert_close(model.lm_head.bias[:3], old_b)
    torch.testing.assert_close(model.lm_head.weight[3:], old_w.mean(0).expand(2, 4))
    torch.testing.assert_close(model.lm_head.bias[3:], old_b.mean().expand(2))
    assert grow_lm_head(model, 4) == 0


def test_resize_vocab_extends_a_checkpoint_directory(tmp_path) -> None:
    from asr.models import load_model

    model_dir = build("xlsr-53-zh", tmp_path / "tiny", texts=["长沙话"])
    before = load_model(str(model_dir), device="cpu")
    old_head = before._base().lm_head.weight.detach().clone()
    assert before.unknown_characters(["长沙话好咯"]) == {"咯": 1, "好": 1}

    assert resize_vocab(model_dir, ["长沙话好咯"]) == ["咯", "好"]
    vocab = json.loads((model_dir / "vocab.json").read_text(encoding="utf-8"))
    assert vocab["咯"] == 6 and vocab["好"] == 7
    after = load_model(str(model_dir), device="cpu")
    head = after._base().lm_head.weight.detach()
    assert head.shape == (8, old_head.shape[1]) and after._base().config.vocab_size == 8
    torch.testing.assert_close(head[:6], old_head)
    assert after.unknown_characters(["长沙话好咯"]) == {}
    assert resize_vocab(model_dir, ["好咯"]) == []


def test_adapt_vocab_is_report_only_unless_extend_vocab(tmp_path) -> None:
    from asr.models import load_model

    model = load_model(str(build("xlsr-53-zh", tmp_path / "tiny", texts=["长沙话"])), device="cpu")
    size = len(model.vocab)
    assert model.adapt_vocab(["长沙话咯咯"]) == {"咯": 2}
    assert len(model.vocab) == size and model._base().lm_head.out_features == size
    assert model.adapt_vocab(["长沙话咯咯"], extend_vocab=True) == {"咯": 2}
    assert len(model.vocab) == size + 1 and model._base().lm_head.out_features == size + 1


def test_vocab_changes_after_lora_and_on_wrong_directories_are_refused(tmp_path) -> None:
    from asr.models import load_model

    model_dir = build("xlsr-53-zh", tmp_path / "tiny", texts=["长沙话"])
    model = load_model(str(model_dir), device="cpu")
    model.set_trainable("lora", {"r": 2})
    with pytest.raises(ConfigError, match="before set_trainable"):
        resize_vocab(model, ["好"])
    model.save(tmp_path / "adapter")
    assert detect_family(tmp_path / "adapter")[0] == "ctc"
    with pytest.raises(ModelSourceError, match="LoRA adapter"):
        resize_vocab(tmp_path / "adapter", ["好"])
    with pytest.raises(ModelSourceError, match="no such model directory"):
        resize_vocab(tmp_path / "missing", ["好"])
