"""The CTC family end to end on tiny random wav2vec2 models: decoding, batching, training, LoRA."""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.data.csmage import to_source_id
from asr.data.safe_pickle import safe_load
from asr.errors import ConfigError
from asr.metrics import cer
from asr.models import DecodeOptions, load_model
from asr.models.ctc.model import CTCASR
from tests.model_factory import build

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

DEMO = Path(__file__).resolve().parents[2] / "demo" / "cs-mage-demo"
# Two short demo clips (cmn-fast-high voice, 1.7 s and 1.9 s).
OVERFIT_IDS = ("video_4_26", "video_4_30")
TEXTS = ["长沙话好恰咯！", "Hello 世界 123", "口味虾还冇剥完咧。"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build("xlsr-53-zh", tmp_path_factory.mktemp("tiny-ctc") / "model", texts=TEXTS)


def _waves(seconds: list[float], seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(round(s * 16000))).astype(np.float32) for s in seconds]


def _demo_clips() -> tuple[list[np.ndarray], list[str]]:
    import soundfile as sf

    data = safe_load(DEMO / "CS-Mage_fulldata.pkl")
    texts = dict(zip(data["id"], data["raw_text"], strict=True))
    waves = []
    with zipfile.ZipFile(DEMO / "audio_wav.zip") as zf:
        for clip in OVERFIT_IDS:
            wave, rate = sf.read(io.BytesIO(zf.read(f"audio_wav/{to_source_id(clip)}.wav")), dtype="float32")
            assert rate == 16000
            waves.append(wave)
    return waves, [texts[c] for c in OVERFIT_IDS]


def test_tiny_model_loads_through_the_registry(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    assert isinstance(model, CTCASR) and model.family == "ctc"
    assert model.spec.lora_targets == ("q_proj", "k_proj", "v_proj", "out_proj")
    assert (tiny_dir / "vocab.json").is_file()
    assert model._base().config.inputs_to_logits_ratio == 320
    assert model.uses_padding_mask()


def test_transcribe_random_waves(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    waves = _waves([0.5, 1.3, 2.2])
    texts = model.transcribe(waves, DecodeOptions())
    assert len(texts) == 3 and all(isinstance(t, str) for t in texts)
    chars = set("".join(texts)) - {" "}
    assert chars and chars <= set(model.vocab) - {"<pad>", "<unk>", "|"}
    # Greedy CTC emits at most one character per 20 ms frame.
    assert all(len(t) <= len(w) / 320 for t, w in zip(texts, waves, strict=True))


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_batched_equals_one_by_one(tmp_path: Path, norm: str) -> None:
    model = load_model(
        str(build("xlsr-53-zh", tmp_path / norm, texts=TEXTS, seed=1, feat_extract_norm=norm)), device="cpu"
    )
    assert model.uses_padding_mask() == (norm == "layer")
    waves = [*_waves([0.7, 1.9, 1.2, 0.7], seed=3), np.zeros(100, np.float32)]
    batched = model.transcribe(waves, DecodeOptions())
    single = [model.transcribe([w], DecodeOptions())[0] for w in waves]
    assert batched == single
    assert batched[-1] == ""  # shorter than one frame
    assert all(batched[:4])


def test_beam_size_falls_back_to_greedy(tiny_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    waves = _waves([1.0])
    with caplog.at_level(logging.INFO, logger="asr.models.ctc.model"):
        beam = model.transcribe(waves, DecodeOptions(beam_size=4))
        model.transcribe(waves, DecodeOptions(beam_size=4))
    assert beam == model.transcribe(waves, DecodeOptions(beam_size=1))
    assert sum("greedily" in r.getMessage() for r in caplog.records) == 1
    settings = model.decoding_settings(DecodeOptions(beam_size=4))
    assert settings["decoder"] == "greedy_ctc" and settings["beam_size"] == 1
    assert settings["requested_beam_size"] == 4


def test_collate_and_loss(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    vocab = model.vocab
    batch = model.collate(_waves([0.8, 1.6]), ["长沙，OH", "好咯！？9"])
    assert tuple(batch["input_values"].shape) == (2, 25600)
    assert batch["attention_mask"].sum(-1).tolist() == [12800, 25600]
    unk = vocab["<unk>"]  # 9 is not in the vocabulary; text is normalized (no punctuation, lower case)
    assert batch["labels"].tolist() == [
        [vocab["长"], vocab["沙"], vocab["o"], vocab["h"]],
        [vocab["好"], vocab["咯"], unk, -100],
    ]
    loss = model.loss(batch)
    assert loss.ndim == 0 and math.isfinite(loss.item()) and loss.item() > 0
    assert model.unknown_characters(["好咯！？9"]) == {"9": 1}


def test_set_trainable_rejects_decoder(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    with pytest.raises(ConfigError, match="no decoder"):
        model.set_trainable("decoder")
    with pytest.raises(ConfigError, match="unknown fine-tuning method"):
        model.set_trainable("adapters")


def _train(model: CTCASR, waves: list[np.ndarray], texts: list[str], steps: int, lr: float) -> list[float]:
    params = [p for p in model.module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98))
    batch = model.collate(waves, texts)
    model.module.train()
    losses = []
    for _ in range(steps):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.module.eval()
    return losses


@pytest.mark.skipif(not (DEMO / "audio_wav.zip").is_file(), reason="demo corpus not in this checkout")
def test_full_fine_tuning_overfits_two_demo_clips(tmp_path: Path) -> None:
    waves, refs = _demo_clips()
    model = load_model(str(build("xlsr-53-zh", tmp_path / "model", texts=refs)), device="cpu")
    cer_before = cer(refs, model.transcribe(waves, DecodeOptions()))
    model.set_trainable("full")
    encoder = model._base().wav2vec2.feature_extractor
    assert not any(p.requires_grad for p in encoder.parameters())
    assert all(p.requires_grad for n, p in model.module.named_parameters() if "feature_extractor" not in n)
    # From random weights CTC first settles on "all blank" (100-200 steps) before it aligns.
    losses, hyps = [], []
    for _ in range(8):
        losses += _train(model, waves, refs, steps=50, lr=5e-3)
        hyps = model.transcribe(waves, DecodeOptions())
        if cer(refs, hyps) <= 0.1:
            break
    assert losses[-1] < 0.5 * losses[0]
    cer_after = cer(refs, hyps)
    assert cer_after < 0.5 and cer_after < cer_before, (hyps, refs, len(losses))


def test_lora_trains_adapters_and_head_and_round_trips(tmp_path: Path) -> None:
    model = load_model(str(build("xlsr-53-zh", tmp_path / "base", texts=TEXTS)), device="cpu")
    added = model.adapt_vocab(["长沙话啵"], extend_vocab=True)  # 啵 is new: the head grows
    assert added == {"啵": 1} and "啵" in model.vocab
    r, hidden, vocab_size = 4, model._base().config.hidden_size, len(model.vocab)
    model.set_trainable("lora", {"r": r, "alpha": 8})
    trainable = {n: p.numel() for n, p in model.module.named_parameters() if p.requires_grad}
    lora = {n: k for n, k in trainable.items() if "lora_" in n}
    head = {n: k for n, k in trainable.items() if "lm_head" in n}
    assert set(trainable) == set(lora) | set(head)
    assert len(lora) == 2 * 4 * 2  # layers x (q, k, v, out) x (A, B)
    assert sum(lora.values()) == 2 * 4 * r * (hidden + hidden)
    assert sum(head.values()) == vocab_size * hidden + vocab_size
    waves = _waves([0.9, 1.4], seed=5)
    _train(model, waves, ["长沙话啵", "口味虾"], steps=5, lr=1e-2)
    before = model.transcribe(waves, DecodeOptions())
    model.save(tmp_path / "adapter")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
    assert (tmp_path / "adapter" / "vocab.json").is_file()
    reloaded = load_model(str(tmp_path / "adapter"), device="cpu")
    assert isinstance(reloaded, CTCASR) and reloaded.vocab == model.vocab
    assert reloaded.transcribe(waves, DecodeOptions()) == before
    with torch.no_grad():
        batch = model.collate(waves, ["长沙话啵", "口味虾"])
        torch.testing.assert_close(
            reloaded.module(
                input_values=batch["input_values"], attention_mask=batch["attention_mask"]
            ).logits,
            model.module(input_values=batch["input_values"], attention_mask=batch["attention_mask"]).logits,
        )


def test_hub_layout_checkpoint_without_marker(tmp_path: Path) -> None:
    """Like the XLSR-53 checkpoints on the Hub: <s>/</s> in vocab.json, preprocessor_config.json, no marker."""
    from transformers import Wav2Vec2CTCTokenizer, Wav2Vec2ForCTC

    tiny = load_model(str(build("xlsr-53-zh", tmp_path / "tiny", texts=TEXTS)), device="cpu")
    hub = tmp_path / "hub"
    chars = [c for c in tiny.vocab if c not in ("<pad>", "<unk>", "|")]
    vocab = {t: i for i, t in enumerate(["<pad>", "<s>", "</s>", "<unk>", "|", *chars])}
    hub.mkdir()
    (hub / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    Wav2Vec2CTCTokenizer(str(hub / "vocab.json")).save_pretrained(hub)
    tiny.processor.feature_extractor.save_pretrained(hub)
    config = tiny._base().config
    config.vocab_size = len(vocab)
    delattr(config, "ctc_head_untrained")
    Wav2Vec2ForCTC(config).save_pretrained(hub)
    assert (hub / "preprocessor_config.json").is_file() and not (hub / "cs_mage_asr.json").exists()

    model = load_model(str(hub), device="cpu")
    assert isinstance(model, CTCASR) and model.processor.tokenizer.bos_token == "<s>"
    texts = model.transcribe(_waves([1.0, 1.5]), DecodeOptions())
    assert not any(tok in t for t in texts for tok in ("<s>", "</s>", "<unk>", "<pad>", "|"))
    assert model.collate(_waves([0.5]), ["长沙"])["labels"].tolist() == [[vocab["长"], vocab["沙"]]]
    assert model.adapt_vocab(["啵"], extend_vocab=True) == {"啵": 1} and model.vocab["啵"] == len(vocab)
    model.set_trainable("lora", {"r": 2})
    assert _trainable_heads(model)  # the grown head has untrained rows
    model.save(tmp_path / "adapter")
    assert load_model(str(tmp_path / "adapter"), device="cpu").vocab == model.vocab


def _trainable_heads(model: CTCASR) -> list[str]:
    return [n for n, p in model.module.named_parameters() if p.requires_grad and "lm_head" in n]


def test_lora_trains_the_head_only_while_it_is_untrained(tiny_dir: Path, tmp_path: Path) -> None:
    fresh = load_model(str(tiny_dir), device="cpu")  # the tiny build marks its random head untrained
    fresh.set_trainable("lora", {"r": 2})
    assert _trainable_heads(fresh)

    full = load_model(str(tiny_dir), device="cpu")
    full.set_trainable("full")
    full.save(tmp_path / "trained")
    config = json.loads((tmp_path / "trained" / "config.json").read_text(encoding="utf-8"))
    assert config["ctc_head_untrained"] is False

    pretrained = load_model(str(tmp_path / "trained"), device="cpu")
    pretrained.set_trainable("lora", {"r": 2})
    assert not _trainable_heads(pretrained)
    assert any(p.requires_grad for p in pretrained.module.parameters())
    forced = load_model(str(tmp_path / "trained"), device="cpu")
    forced.set_trainable("lora", {"r": 2, "modules_to_save": ["lm_head"]})
    assert _trainable_heads(forced)


def test_clean_prediction_joins_cjk_keeps_latin_words(tiny_dir: Path) -> None:
    model = load_model(str(tiny_dir), device="cpu")
    assert model.clean_prediction("  长 沙  话 hello  world 好 ") == "长沙话hello world好"
