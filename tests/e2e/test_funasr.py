"""funasr family end to end on tiny random Paraformer / SenseVoice models (CPU, offline).

Overfits the shortest demo clips (synthetic tone sequences when the demo corpus is absent),
checks batched == one-by-one decoding, save -> load, funasr's own AutoModel on the saved
directory, LoRA and the training methods.
"""

from __future__ import annotations

import importlib.util
import io
import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from asr.errors import ConfigError, DataError, ModelSourceError
from asr.metrics import cer
from asr.models import load_model
from asr.models.funasr.paraformer import ParaformerASR
from asr.models.funasr.sensevoice import SenseVoiceASR
from asr.models.spec import DecodeOptions

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.skipif(importlib.util.find_spec("funasr") is None, reason="funasr extra not installed"),
]

KINDS = ("paraformer", "sensevoice")
DEMO = Path(__file__).resolve().parents[2] / "demo" / "cs-mage-demo"
ZH = DecodeOptions(language="zh")
STEPS = {"paraformer": 40, "sensevoice": 50}
LR = 6e-3


def _demo_clips(n: int) -> tuple[list[np.ndarray], list[str]]:
    import soundfile as sf

    from asr.data.csmage import to_source_id
    from asr.data.safe_pickle import safe_load

    data = safe_load(DEMO / "CS-Mage_fulldata.pkl")
    with zipfile.ZipFile(DEMO / "audio_wav.zip") as zf:
        sizes = {info.filename: info.file_size for info in zf.infolist()}
        rows = sorted(
            (sizes[name], name, text)
            for vid, text in zip(data["id"], data["raw_text"], strict=True)
            if (name := f"audio_wav/{to_source_id(vid)}.wav") in sizes
        )[:n]
        waves = [sf.read(io.BytesIO(zf.read(name)), dtype="float32")[0] for _, name, _ in rows]
    return waves, [text for _, _, text in rows]


def _synthetic_clips(n: int) -> tuple[list[np.ndarray], list[str]]:
    """One 120 ms tone per character (pitch from the character's rank), 30 ms gaps."""
    from asr.data.demo_sentences import DEMO_LINES
    from asr.text.normalize import normalize

    texts = [line.text for line in DEMO_LINES[:n]]
    vocab = sorted({ch for t in texts for ch in normalize(t)})
    t = np.arange(int(0.12 * 16000)) / 16000
    waves = []
    for text in texts:
        parts = [np.zeros(1600, np.float32)]
        for ch in normalize(text):
            parts += [0.2 * np.sin(2 * np.pi * (200 + 45 * vocab.index(ch)) * t), np.zeros(480)]
        waves.append(np.concatenate(parts).astype(np.float32))
    return waves, texts


@pytest.fixture(scope="module")
def clips() -> tuple[list[np.ndarray], list[str]]:
    if (DEMO / "audio_wav.zip").is_file() and (DEMO / "CS-Mage_fulldata.pkl").is_file():
        return _demo_clips(3)
    return _synthetic_clips(3)


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory, clips) -> dict[str, Path]:
    from tests.model_factory import FUNASR_KINDS, build

    root = tmp_path_factory.mktemp("funasr")
    return {kind: build(FUNASR_KINDS[kind], root / kind, texts=clips[1], seed=0) for kind in KINDS}


@pytest.fixture(scope="module")
def trained(tiny_dirs, clips, tmp_path_factory) -> dict[str, dict]:
    """Each kind overfitted with full fine-tuning, then saved and reloaded."""
    waves, texts = clips
    out = {}
    for kind in KINDS:
        model = load_model(str(tiny_dirs[kind]), device="cpu")
        before = model.transcribe(waves, ZH)
        model.set_trainable("full")
        torch.manual_seed(0)
        opt = torch.optim.AdamW([p for p in model.module.parameters() if p.requires_grad], lr=LR)
        batch = model.collate(waves, texts)
        model.module.train()
        losses = []
        for _ in range(STEPS[kind]):
            loss = model.loss(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        model.module.eval()
        saved = tmp_path_factory.mktemp(f"{kind}-trained")
        model.save(saved)
        out[kind] = {
            "model": model,
            "before": before,
            "after": model.transcribe(waves, ZH),
            "losses": losses,
            "dir": saved,
        }
    return out


def _random_waves(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(0.1 * rng.standard_normal(int(16000 * s))).astype(np.float32) for s in (1.0, 1.7, 2.3)]


@pytest.mark.parametrize("kind", KINDS)
def test_tiny_model_loads_and_batches_like_single(kind, tiny_dirs):
    model = load_model(str(tiny_dirs[kind]), device="cpu")
    assert model.family == "funasr"
    assert type(model) is {"paraformer": ParaformerASR, "sensevoice": SenseVoiceASR}[kind]
    assert json.loads((tiny_dirs[kind] / "cs_mage_asr.json").read_text())["family"] == "funasr"
    waves = _random_waves()
    batched = model.transcribe(waves, ZH)
    assert len(batched) == 3 and all(isinstance(t, str) for t in batched)
    assert batched == [model.transcribe([w], ZH)[0] for w in waves]
    assert model.transcribe([], ZH) == []


@pytest.mark.parametrize("kind", KINDS)
def test_collate_and_loss(kind, tiny_dirs, clips):
    waves, texts = clips
    model = load_model(str(tiny_dirs[kind]), device="cpu")
    batch = model.collate(waves, texts)
    assert batch["speech"].shape[0] == 3 and batch["speech"].shape[2] == 560  # 80 mels x LFR 7
    assert batch["speech_lengths"].max() == batch["speech"].shape[1]
    lengths = batch["speech_lengths"].clone()
    prefix = 4 if kind == "sensevoice" else 0
    assert batch["text_lengths"].tolist() == [prefix + len(model.text_ids(t)) for t in texts]
    if kind == "sensevoice":  # <|zh|> <|NEUTRAL|> <|Speech|> <|woitn|>, ids as SenseVoiceSmall expects
        tags = ["<|zh|>", "<|NEUTRAL|>", "<|Speech|>", "<|woitn|>"]
        expected = [model.tokenizer.sp.piece_to_id(tag) for tag in tags]
        assert (batch["text"][:, :4] == torch.tensor(expected)).all()
        assert expected[0] == 24884 and expected[3] == 25017
    model.set_trainable("full")
    loss = model.loss({**batch, "keys": ["a", "b", "c"]})  # extra entries (the trainer adds ids) are ignored
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert torch.equal(batch["speech_lengths"], lengths)  # the caller's batch is left alone
    assert model.unknown_characters([texts[0] + "x！"]) == {"x": 1}


@pytest.mark.parametrize("kind", KINDS)
def test_overfit_lowers_loss_and_cer(kind, trained, clips):
    waves, texts = clips
    run = trained[kind]
    model = run["model"]
    losses = run["losses"]
    assert all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < 0.5 * losses[0], losses
    before = cer(texts, [model.clean_prediction(t) for t in run["before"]])
    after = cer(texts, [model.clean_prediction(t) for t in run["after"]])
    assert after < before and after < 0.8, (before, after, run["after"])
    if kind == "sensevoice":  # the rich tags stay in the raw output and are cleaned away
        assert all(t.startswith("<|zh|><|NEUTRAL|><|Speech|><|woitn|>") for t in run["after"]), run["after"]
        assert not any("<|" in model.clean_prediction(t) for t in run["after"])
    assert run["after"] == [model.transcribe([w], ZH)[0] for w in waves]


@pytest.mark.parametrize("kind", KINDS)
def test_save_load_roundtrip(kind, trained, clips, tmp_path):
    waves, _ = clips
    run = trained[kind]
    saved = run["dir"]
    names = {p.name for p in saved.iterdir()}
    assert {"config.yaml", "am.mvn", "model.safetensors", "cs_mage_asr.json"} <= names
    assert ("bpe.model" if kind == "sensevoice" else "tokens.json") in names
    assert "model.pt" not in names
    config = yaml.safe_load((saved / "config.yaml").read_text(encoding="utf-8"))
    assert config["frontend_conf"]["cmvn_file"] == "am.mvn"
    reloaded = load_model(str(saved), device="cpu")
    assert reloaded.transcribe(waves, ZH) == run["after"]
    # a config without `dither` (funasr then dithers with 1.0) still decodes deterministically
    copy = tmp_path / "no-dither"
    shutil.copytree(saved, copy)
    del config["frontend_conf"]["dither"]
    (copy / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    undithered = load_model(str(copy), device="cpu")
    assert undithered.frontend.dither == 1.0
    assert undithered.transcribe(waves, ZH) == run["after"]


@pytest.mark.parametrize("kind", KINDS)
def test_funasr_automodel_reads_saved_dir(kind, trained, clips, tmp_path):
    from funasr import AutoModel

    from asr.models.funasr.checkpoint import write_native_weights

    waves, _ = clips
    run = trained[kind]
    native = tmp_path / "native"
    shutil.copytree(run["dir"], native)
    write_native_weights(native)
    auto = AutoModel(
        model=str(native), device="cpu", disable_update=True, disable_pbar=True, ncpu=1, log_level="ERROR"
    )
    texts = [auto.generate(input=w, language="zh", use_itn=False)[0]["text"] for w in waves]
    assert texts == run["after"]
    # model.pt alone (funasr's native format, tensors only) loads the same model
    (native / "model.safetensors").unlink()
    assert load_model(str(native), device="cpu").transcribe(waves, ZH) == run["after"]


class _NotATensor:
    pass


def test_pickled_objects_in_model_pt_are_refused(trained, tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(trained["paraformer"]["dir"], bad)
    (bad / "model.safetensors").unlink()
    torch.save({"state_dict": {}, "payload": _NotATensor()}, bad / "model.pt")
    with pytest.raises(ModelSourceError, match="refusing to load"):
        load_model(str(bad), device="cpu")


@pytest.mark.parametrize("kind", KINDS)
def test_lora_trains_adapters_only_and_saves_merged(kind, trained, clips):
    waves, texts = clips
    model = load_model(str(trained[kind]["dir"]), device="cpu")
    base = {k: v.clone() for k, v in model.net.state_dict().items()}
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    trainable = [n for n, p in model.module.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    wrapped = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable}
    assert wrapped == (
        {"linear_q_k_v", "linear_out"} | ({"linear_q", "linear_k_v"} if kind == "paraformer" else set())
    )
    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.module.parameters() if p.requires_grad], lr=1e-2)
    batch = model.collate(waves, texts)
    for _ in range(3):
        loss = model.loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.module.eval()
    out = trained[kind]["dir"].parent / f"{kind}-lora"
    model.save(out)
    merged = load_model(str(out), device="cpu")
    key = "encoder.encoders0.0.self_attn.linear_q_k_v.weight"
    assert not torch.equal(merged.net.state_dict()[key], base[key])
    assert set(merged.net.state_dict()) == set(base)
    feats, lens = model.features(waves)
    with torch.no_grad():
        lora_out = model.net.encoder(feats.clone(), lens)[0]  # SenseVoice's encoder scales its input in place
        assert torch.allclose(lora_out, merged.net.encoder(feats.clone(), lens)[0], atol=1e-4)
    assert merged.transcribe(waves, ZH) == model.transcribe(waves, ZH)
    with pytest.raises(ConfigError):
        model.set_trainable("full")


@pytest.mark.parametrize("kind", KINDS)
def test_decoder_method_and_decoder_scoped_lora(kind, tiny_dirs):
    model = load_model(str(tiny_dirs[kind]), device="cpu")
    assert model.enable_spec_augment() is False  # the tiny configs have no SpecAugLFR
    if kind == "sensevoice":
        with pytest.raises(ConfigError, match="encoder-only"):
            model.set_trainable("decoder")
        with pytest.raises(ConfigError, match="no decoder"):
            model.set_trainable("lora", {"scope": "decoder"})
        return
    model.set_trainable("decoder")
    flags = {n: p.requires_grad for n, p in model.module.named_parameters()}
    assert not any(v for n, v in flags.items() if n.startswith("encoder."))
    assert all(v for n, v in flags.items() if n.startswith(("decoder.", "predictor.")))
    scoped = load_model(str(tiny_dirs[kind]), device="cpu")
    scoped.set_trainable("lora", {"r": 2, "scope": "decoder"})
    trainable = [n for n, p in scoped.module.named_parameters() if p.requires_grad]
    assert trainable and all(".decoder." in n and ".lora_" in n for n in trainable)


def test_bad_input_is_reported(tiny_dirs, tmp_path):
    model = load_model(str(tiny_dirs["sensevoice"]), device="cpu")
    with pytest.raises(DataError, match="1-D"):
        model.transcribe([np.zeros((2, 16000), np.float32)], ZH)
    with pytest.raises(ConfigError, match="language"):
        model.transcribe([np.zeros(16000, np.float32)], DecodeOptions(language="fr"))
    with pytest.raises(ConfigError, match="unknown fine-tuning method"):
        model.set_trainable("adapters")
    assert isinstance(model.transcribe([np.zeros(10, np.float32)], DecodeOptions(language=None))[0], str)
    other = tmp_path / "punc"
    other.mkdir()
    (other / "config.yaml").write_text("model: CTTransformer\n", encoding="utf-8")
    with pytest.raises(ModelSourceError, match="CTTransformer"):
        load_model(str(other), device="cpu")
