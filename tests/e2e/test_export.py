"""`asr export` on tiny random models: merged/adapter/CTranslate2 round trips, and Hub pushes to a
loopback fake Hub (tests/fake_hub.py)."""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from asr import hub as hub_module
from asr.cli import main
from tests.e2e.conftest import DEMO
from tests.fake_hub import FakeHub
from tests.unit.export.test_card import write_run

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("one_thread")]

TOKEN = "hf_SECRETtokenVALUE1234567890"
PROMPT = [50258, 50260, 50359, 50363]  # <|startoftranscript|><|zh|><|transcribe|><|notimestamps|>
MAX_NEW = 40


def _gen(model, feats: torch.Tensor) -> list[list[int]]:
    with torch.no_grad():
        out = model.generate(
            input_features=feats, language="zh", task="transcribe", return_timestamps=False,
            max_new_tokens=MAX_NEW, num_beams=1, do_sample=False,
        )  # fmt: skip
    return [[t for t in seq if t not in PROMPT] for seq in out.tolist()]


def _logits(model, feats: torch.Tensor, tokens: list[int]) -> torch.Tensor:
    dec = torch.tensor([PROMPT + tokens[:8]] * feats.shape[0])
    with torch.no_grad():
        return model(input_features=feats, decoder_input_ids=dec).logits


@pytest.fixture(scope="module")
def waves() -> list[np.ndarray]:
    """Three demo clips (the bundled corpus), else three synthetic tones."""
    import soundfile as sf

    archive = DEMO / "audio_wav.zip"
    if archive.is_file():
        with zipfile.ZipFile(archive) as z:
            names = sorted(n for n in z.namelist() if n.endswith(".wav"))[:3]
            return [sf.read(io.BytesIO(z.read(n)), dtype="float32")[0] for n in names]
    t = np.arange(32000) / 16000
    return [(0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220, 330, 440)]


@pytest.fixture(scope="module")
def lora_run(tiny_whisper: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RUN/ with best/ = a LoRA checkpoint on a perturbed tiny Whisper (base/ beside it) and run records.

    Random tiny models repeat one token; noise on the weights makes greedy outputs varied, so
    token-by-token comparisons mean something.
    """
    from asr.models import load_model

    root = tmp_path_factory.mktemp("export-lora")
    model = load_model(tiny_whisper, device="cpu", dtype="fp32")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.module.parameters():
            if p.dim() >= 2:
                p.add_(torch.randn(p.shape, generator=gen) * 0.3)
    model.save(root / "base")
    model = load_model(root / "base", device="cpu", dtype="fp32")
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0})
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5, generator=gen)
    run = write_run(root / "run")
    model.save(run / "best")
    return run


@pytest.fixture(scope="module")
def merged_export(lora_run: Path) -> Path:
    out = lora_run / "export"
    args = ["export", "--checkpoint", str(lora_run / "best"), "--out", str(out), "--merge-lora"]
    assert main([*args, "--ct2", "--quantization", "float32"]) == 0
    return out


def test_merged_lora_matches_the_checkpoint(lora_run, merged_export, waves):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from asr.models import load_model
    from asr.models.spec import DecodeOptions

    out = merged_export
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json"} <= names
    assert {"preprocessor_config.json", "README.md", "training_curve.png", "export_info.json", "ct2"} <= names
    assert not names & {"adapter_config.json", "pytorch_model.bin"}
    assert sorted(p.name for p in (out / "run").iterdir()) == [
        "config.yaml",
        "metrics_test.json",
        "summary.json",
    ]
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["language"] == "<|zh|>" and gen["task"] == "transcribe"
    assert gen["return_timestamps"] is False and gen["forced_decoder_ids"] is None
    assert gen["lang_to_id"]["<|zh|>"] == 50260 and gen["task_to_id"]["transcribe"] == 50359

    checkpoint = load_model(lora_run / "best", device="cpu", dtype="fp32")  # base + unmerged adapter
    plain = WhisperForConditionalGeneration.from_pretrained(out).eval()  # plain transformers
    feats = (
        WhisperProcessor.from_pretrained(out)
        .feature_extractor(waves, sampling_rate=16000, return_tensors="pt")
        .input_features
    )
    want = _gen(checkpoint.module, feats)
    assert len({t for seq in want for t in seq}) > 5  # varied output, not one repeated token
    assert _gen(plain, feats) == want
    diff = (_logits(plain, feats, want[0]) - _logits(checkpoint.module, feats, want[0])).abs().max()
    assert diff < 1e-4

    exported = load_model(out, device="cpu", dtype="fp32")  # the toolkit's own loader
    assert exported.transcribe(waves, DecodeOptions()) == checkpoint.transcribe(waves, DecodeOptions())


def test_pipeline_loads_the_export(merged_export, waves):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(merged_export), device="cpu")
    text = asr(waves[0], generate_kwargs={"language": "zh", "task": "transcribe", "max_new_tokens": 8})[
        "text"
    ]
    assert isinstance(text, str) and text.strip()


def test_ct2_greedy_matches_transformers(merged_export, waves):
    import ctranslate2
    from faster_whisper import WhisperModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    ct2_dir = merged_export / "ct2"
    assert {"model.bin", "tokenizer.json", "preprocessor_config.json", "config.json"} <= {
        p.name for p in ct2_dir.iterdir()
    }
    model = WhisperForConditionalGeneration.from_pretrained(merged_export).eval()
    feats = (
        WhisperProcessor.from_pretrained(merged_export)
        .feature_extractor(waves, sampling_rate=16000, return_tensors="pt")
        .input_features
    )
    ct2 = ctranslate2.models.Whisper(str(ct2_dir), device="cpu", compute_type="float32", intra_threads=1)
    # CTranslate2 decodes up to 224 tokens; compare the first MAX_NEW (transformers' cap).
    result = ct2.generate(
        ctranslate2.StorageView.from_array(feats.numpy()), [PROMPT] * len(waves), beam_size=1
    )
    got = [r.sequences_ids[0] for r in result]
    # Every token CTranslate2 chose is transformers' greedy choice for the same prefix (teacher
    # forcing, the suppressed tokens masked as both engines do), up to fp32 near-ties. Not compared
    # with transformers' generate(): in a full test session it once took, at step 31 of one
    # sequence, a token 4.6 logits below this argmax, which a single forward never reproduces.
    suppress = list(model.generation_config.suppress_tokens or [])
    begin = list(model.generation_config.begin_suppress_tokens or [])
    checked = 0
    for i, ct2_seq in enumerate(got):
        tokens = [t for t in ct2_seq if t != 50257][:MAX_NEW]
        with torch.no_grad():
            logits = model(
                input_features=feats[i : i + 1], decoder_input_ids=torch.tensor([PROMPT + tokens])
            ).logits[0, len(PROMPT) - 1 : len(PROMPT) - 1 + len(tokens)]
        logits[:, suppress] = -torch.inf
        logits[0, begin] = -torch.inf
        best = logits.max(dim=-1)
        for step, token in enumerate(tokens):
            margin = float(best.values[step] - logits[step, token])
            assert margin < 1e-3, (i, step, token, int(best.indices[step]), margin)
        checked += len(tokens)
    assert checked >= len(got) * 8, checked
    assert len({t for seq in got for t in seq}) > 5  # varied output, not one repeated token

    fw = WhisperModel(str(ct2_dir), device="cpu", compute_type="float32", cpu_threads=1)
    assert fw.feat_kwargs.get("feature_size") == 80
    assert fw.hf_tokenizer.token_to_id("<|zh|>") == 50260
    segments, info = fw.transcribe(
        waves[0], language="zh", beam_size=1, without_timestamps=True, temperature=0.0
    )
    assert isinstance(list(segments), list) and info.language == "zh"


def test_adapter_only_loads_with_peft(lora_run, tmp_path, waves):
    from peft import PeftModel
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    from asr.models import load_model

    out = tmp_path / "adapter"
    argv = ["export", "--checkpoint", str(lora_run / "best"), "--out", str(out), "--adapter-only"]
    assert main([*argv, "--ct2", "--quantization", "int8"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "tokenizer.json"} <= names
    assert "model.safetensors" not in names
    assert (out / "ct2" / "model.bin").is_file()  # converted from a merged copy made on the side
    base_ref = json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"]
    assert Path(base_ref).resolve() == (lora_run.parent / "base").resolve()
    assert "library_name: peft" in (out / "README.md").read_text()

    base = WhisperForConditionalGeneration.from_pretrained(base_ref).eval()
    model = PeftModel.from_pretrained(base, out).eval()
    feats = (
        WhisperProcessor.from_pretrained(out)
        .feature_extractor(waves[:1], sampling_rate=16000, return_tensors="pt")
        .input_features
    )
    checkpoint = load_model(lora_run / "best", device="cpu", dtype="fp32")
    tokens = _gen(checkpoint.module, feats)[0]
    assert torch.equal(_logits(model, feats, tokens), _logits(checkpoint.module, feats, tokens))


def test_ctc_export_loads_with_transformers(tmp_path):
    from transformers import AutoModelForCTC, pipeline

    from asr.models import load_model
    from tests.model_factory import build

    texts = ["长沙的米粉", "岳麓山好高", "湘江边上散步"]
    build("xlsr-53-zh", tmp_path / "base", texts=texts)
    model = load_model(tmp_path / "base", device="cpu", dtype="fp32")
    model.set_trainable("lora", {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]})
    with torch.no_grad():
        for name, p in model.module.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    model.save(tmp_path / "run" / "best")
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    inputs = model.features([wave])
    with torch.no_grad():
        want = model.module(**inputs).logits

    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(tmp_path / "run" / "best"), "--out", str(out)]) == 0
    assert "model.safetensors" in {p.name for p in out.iterdir()}
    plain = AutoModelForCTC.from_pretrained(out).eval()
    with torch.no_grad():
        assert (plain(**inputs).logits - want).abs().max() < 1e-4
    assert isinstance(pipeline("automatic-speech-recognition", model=str(out))(wave)["text"], str)
    assert "wav2vec2" in (out / "README.md").read_text()

    code = main(
        ["export", "--checkpoint", str(tmp_path / "run" / "best"), "--out", str(tmp_path / "x"), "--ct2"]
    )
    assert code == 2


def test_funasr_export_loads_with_funasr_automodel(tmp_path, waves):
    from funasr import AutoModel
    from safetensors.torch import load_file

    from asr.export.merge import check_native_weights
    from asr.models import load_model
    from asr.models.spec import DecodeOptions
    from tests.model_factory import build

    best = build(
        "paraformer-large", tmp_path / "run" / "best", texts=["长沙的米粉", "岳麓山好高", "湘江边上散步"]
    )
    want = load_model(best, device="cpu").transcribe(waves, DecodeOptions())
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(best), "--out", str(out)]) == 0
    assert {"config.yaml", "model.safetensors", "model.pt", "tokens.json", "am.mvn"} <= {
        p.name for p in out.iterdir()
    }
    check_native_weights(out / "model.pt")  # tensors only: torch.load(weights_only=True)
    state, source = torch.load(out / "model.pt", weights_only=True), load_file(best / "model.safetensors")
    assert state.keys() == source.keys() and all(torch.equal(state[k], source[k]) for k in source)
    assert "from funasr import AutoModel" in (out / "README.md").read_text()

    auto = AutoModel(
        model=str(out), device="cpu", disable_update=True, disable_pbar=True, ncpu=1, log_level="ERROR"
    )
    assert [auto.generate(input=w)[0]["text"] for w in waves] == want


# --- errors ---------------------------------------------------------------------------------------


def test_not_a_checkpoint_and_bad_requests(tmp_path, lora_run, capsys):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    assert main(["export", "--checkpoint", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "is not a checkpoint" in capsys.readouterr().err
    assert main(["export", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such checkpoint directory" in capsys.readouterr().err

    full = lora_run.parent / "base"
    assert main(["export", "--checkpoint", str(full), "--out", str(tmp_path / "o"), "--adapter-only"]) == 2
    assert "not a LoRA adapter" in capsys.readouterr().err

    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "keep.txt").write_text("mine")
    assert main(["export", "--checkpoint", str(full), "--out", str(occupied)]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (occupied / "keep.txt").read_text() == "mine"
    assert main(["export", "--checkpoint", str(full), "--out", str(full / "inside")]) == 2
    assert "overlaps the checkpoint" in capsys.readouterr().err


# --- Hub ------------------------------------------------------------------------------------------


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """The fake Hub on a random loopback port; huggingface_hub pointed at it, Xet off, no saved login."""
    from huggingface_hub import constants

    with FakeHub(token=TOKEN) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)  # read at import by huggingface_hub
        monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", True)  # the LFS path: Xet needs a CAS server
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-saved-token"))
        monkeypatch.setattr(constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agent-harnesses.json"))
        yield hub
    assert hub.unknown == [], f"the client called routes the fake Hub does not know: {hub.unknown}"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_push_uploads_the_export_byte_for_byte(lora_run, merged_export, fake_hub, tmp_path, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    out = tmp_path / "export"
    argv = ["export", "--checkpoint", str(lora_run / "best"), "--out", str(out), "--merge-lora"]
    assert main([*argv, "--push-to-hub", "tester/whisper-cs-mage", "--private"]) == 0

    repo = fake_hub.repos["tester/whisper-cs-mage"]
    assert repo.private is True and len(repo.commits) == 1
    assert repo.files == _files(out)
    assert len(repo.files["model.safetensors"]) > 10_000_000
    lfs_puts = [p for m, p in fake_hub.requests if m == "PUT" and p.startswith("/__lfs/")]
    assert len(lfs_puts) >= 2  # model.safetensors and training_curve.png went through LFS
    assert "model-index" in repo.files["README.md"].decode()

    captured = capfd.readouterr()
    assert "pushed to http://127.0.0.1" in captured.out
    logs = "\n".join(r.getMessage() for r in caplog.records)
    assert TOKEN not in captured.out + captured.err + logs
    assert not any(TOKEN in str(f.read_bytes()) for f in out.rglob("*") if f.is_file())

    # pushing the merged export again to the same repo is a second commit (exist_ok)
    url = hub_module.push_folder(merged_export, "tester/whisper-cs-mage", token=TOKEN)
    assert url.startswith(fake_hub.url) and len(repo.commits) == 2
    assert repo.files["ct2/model.bin"] == (merged_export / "ct2" / "model.bin").read_bytes()


def test_push_failure_is_reported_and_nothing_committed(merged_export, fake_hub, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    fake_hub.fail_commit = 500
    with pytest.raises(hub_module.HubNetworkError, match=r"answered 500.*no commit was made"):
        hub_module.push_folder(merged_export, "tester/broken", token=TOKEN)
    assert fake_hub.repos["tester/broken"].commits == []
    assert fake_hub.repos["tester/broken"].files == {}
    captured = capfd.readouterr()
    assert TOKEN not in captured.out + captured.err + "\n".join(r.getMessage() for r in caplog.records)


def test_push_connection_refused(merged_export, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nothing listens there
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub_module.HubNetworkError, match=r"could not be reached.*not created or changed"):
        hub_module.push_folder(merged_export, "tester/offline", token=TOKEN)


def test_push_errors_before_any_work(lora_run, fake_hub, monkeypatch, tmp_path, capsys):
    ckpt = str(lora_run / "best")
    assert (
        main(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "a"), "--push-to-hub", "bad repo/x"])
        == 2
    )
    assert "--push-to-hub 'bad repo/x'" in capsys.readouterr().err
    assert main(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "a"), "--push-to-hub", "a/b/c"]) == 2
    assert "expected USER/REPO" in capsys.readouterr().err

    monkeypatch.delenv("HF_TOKEN")
    assert (
        main(["export", "--checkpoint", ckpt, "--out", str(tmp_path / "a"), "--push-to-hub", "tester/m"]) == 2
    )
    assert "no Hugging Face token" in capsys.readouterr().err
    assert not (tmp_path / "a").exists()  # failed before exporting anything
    assert fake_hub.requests == []


def test_dry_run_lists_files_and_uploads_nothing(lora_run, fake_hub, tmp_path, capsys):
    out = tmp_path / "export"
    argv = ["export", "--checkpoint", str(lora_run / "best"), "--out", str(out), "--adapter-only"]
    assert main([*argv, "--push-to-hub", "tester/dry", "--dry-run"]) == 0
    report = capsys.readouterr().out
    assert f"in one commit to {fake_hub.url}/tester/dry" in report
    for path in ("adapter_model.safetensors", "README.md", "run/metrics_test.json"):
        assert path in report
    assert "credentials: found" in report and "nothing was uploaded" in report
    assert TOKEN not in report
    assert fake_hub.requests == []
    assert os.path.isdir(out)


def test_card_ct2_short_context_recipe_runs(merged_export, waves, tmp_path, monkeypatch, capsys):
    """The card's CTranslate2 recipe, run as written (Hub download stubbed): it decodes at the
    recorded context and prints what the toolkit's ct2 backend transcribes."""
    import shutil

    import huggingface_hub
    import soundfile as sf

    from asr.export.cards.whisper import CT2_SHORT_CONTEXT_USAGE
    from asr.models import load_model
    from asr.models.spec import DecodeOptions

    copy = tmp_path / "export"
    shutil.copytree(merged_export, copy)
    gen = json.loads((copy / "generation_config.json").read_text(encoding="utf-8"))
    (copy / "generation_config.json").write_text(
        json.dumps({**gen, "audio_context": "auto"}), encoding="utf-8"
    )
    card = (merged_export / "README.md").read_text(encoding="utf-8")
    blocks = [b.split("```", 1)[0] for b in card.split("```python\n")[1:]]
    [code] = [b for b in blocks if "ctranslate2.models.Whisper" in b]  # the card's own text
    assert code.strip().endswith(CT2_SHORT_CONTEXT_USAGE.splitlines()[-1])
    monkeypatch.setattr(huggingface_hub, "snapshot_download", lambda *a, **k: str(copy))
    monkeypatch.chdir(tmp_path)
    sf.write(tmp_path / "clip.wav", waves[0], 16000)
    frames: list[int] = []
    import ctranslate2

    real = ctranslate2.models.Whisper

    class Spy(real):  # records the frames the recipe feeds
        def generate(self, features, *args, **kwargs):
            frames.append(features.shape[-1])
            return super().generate(features, *args, **kwargs)

    monkeypatch.setattr(ctranslate2.models, "Whisper", Spy)
    exec(code.replace('compute_type="int8"', 'compute_type="float32"'), {})
    printed = capsys.readouterr().out.strip()
    monkeypatch.undo()

    model = load_model(copy, device="cpu", dtype="fp32")
    model.set_backend("ct2", compute_type="float32")
    ours = model.transcribe([waves[0]], DecodeOptions(guard=False))[0]
    assert frames == [1000]  # a 2-4 s clip: auto's 10 s floor
    assert ours.strip() and printed == ours.strip()  # print() output was stripped of its newline
