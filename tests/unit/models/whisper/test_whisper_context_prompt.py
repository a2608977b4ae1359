"""Whisper's previous-text prompt from ``--context``: built, never in the output, outside the
guard's count, and the same tokens on the transformers and CTranslate2 backends (tiny model)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.models.whisper.decoding import DecodeLimits
from asr.models.whisper.model import previous_text_ids
from asr.models.whisper.options import WhisperDecodeOptions

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = "岳麓山，橘子洲"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from asr.models import load_model
    from tests.model_factory import build

    return load_model(build("whisper-tiny", tmp_path_factory.mktemp("tiny")), device="cpu", dtype="fp32")


@pytest.fixture(scope="module")
def noise() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.standard_normal(16000 * s).astype(np.float32) * 0.1 for s in (1, 2)]


def test_previous_text_is_startofprev_and_the_context(tiny) -> None:
    tok = tiny.processor.tokenizer
    prev = tok.convert_tokens_to_ids("<|startofprev|>")
    ids = previous_text_ids(tok, " 岳麓山，\n 橘子洲\n", 448)
    assert ids[0] == prev and tok.decode(ids[1:]) == " 岳麓山， 橘子洲"  # whitespace collapsed, leading space
    assert previous_text_ids(tok, None, 448) == () == previous_text_ids(tok, " \n", 448)
    long = previous_text_ids(tok, "坡子街" * 200, 448)
    assert len(long) == 1 + 223 and long[0] == prev  # the last 223 tokens, as openai-whisper keeps
    assert long[-50:] == previous_text_ids(tok, "坡子街" * 100, 448)[-50:]

    prompt = tiny.decode_prompt(WhisperDecodeOptions(context=NAMES))
    start = tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    assert prompt.tokens(timestamps=False) == [*ids[:1], *previous_text_ids(tok, NAMES, 448)[1:], *start]
    assert tiny.max_new_tokens(prompt) == 448 - 4 - len(prompt.previous)
    assert tiny.decode_prompt(WhisperDecodeOptions()).previous == ()


def test_prompt_returned_by_generate_is_stripped(tiny, noise, monkeypatch) -> None:
    """transformers versions that return the decoder input (previous text included) lose it again."""
    tok = tiny.processor.tokenizer
    options = WhisperDecodeOptions(context=NAMES)
    prompt = tiny.decode_prompt(options)
    text = tok.encode("今天恰么子饭", add_special_tokens=False)
    eos = tok.convert_tokens_to_ids("<|endoftext|>")
    seen: dict[str, object] = {}

    def generate(**kwargs):
        seen.update(kwargs)
        return torch.tensor([prompt.tokens(False) + text + [eos]] * len(noise))

    monkeypatch.setattr(tiny.model, "generate", generate)
    assert tiny.transcribe(noise, options) == ["今天恰么子饭"] * 2
    assert seen["prompt_ids"].tolist() == list(prompt.previous)
    assert prompt.new_tokens([*prompt.previous, 7, 8], False) == [7, 8] == prompt.new_tokens([7, 8], False)


@pytest.mark.parametrize("backend", ["torch", "ct2"])
def test_guard_counts_new_tokens_only(tiny, noise, backend) -> None:
    """A 224-token prompt does not eat the guard's cap: the random model talks to its 6 new tokens."""
    if backend == "ct2":
        pytest.importorskip("ctranslate2")
    tiny.set_backend(backend, **({"compute_type": "float32"} if backend == "ct2" else {}))
    try:
        options = WhisperDecodeOptions(context="坡子街" * 200, max_tokens_per_second=0, min_new_tokens=6)
        prompt = tiny.decode_prompt(options)
        assert len(prompt.previous) == 224
        seqs = tiny.decoder().generate(
            tiny.decoder_features(noise, 1000), prompt, DecodeLimits.of([6, 6], options), timestamps=False
        )
        assert [len(s) for s in seqs] == [6, 6]
    finally:
        tiny.set_backend("torch")


def test_ct2_and_torch_agree_with_a_prompt_and_the_prompt_changes_decoding(tiny, noise) -> None:
    pytest.importorskip("ctranslate2")
    with_names = WhisperDecodeOptions(context=NAMES, max_tokens_per_second=0, min_new_tokens=6)
    plain = WhisperDecodeOptions(max_tokens_per_second=0, min_new_tokens=6)

    def tokens(options: WhisperDecodeOptions) -> list[list[int]]:
        prompt = tiny.decode_prompt(options)
        limits = DecodeLimits.of([6, 6], options)
        return tiny.decoder().generate(tiny.decoder_features(noise, 1000), prompt, limits, timestamps=False)

    torch_tokens = tokens(with_names)
    torch_plain = tokens(plain)
    tiny.set_backend("ct2", compute_type="float32")
    try:
        assert tokens(with_names) == torch_tokens
        assert tiny.transcribe(noise, with_names) == [
            tiny.processor.tokenizer.decode(s) for s in torch_tokens
        ]
    finally:
        tiny.set_backend("torch")
    assert torch_tokens != torch_plain
