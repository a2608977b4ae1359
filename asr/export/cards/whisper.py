"""Card text for the Whisper family: the transformers pipeline, faster-whisper and the
CTranslate2 recipe for decoding at the fine-tuned audio context."""

from __future__ import annotations

from asr.export.cards.blocks import pipeline_usage, python_block

# Decoding the CTranslate2 copy at the recorded audio context (asr.models.whisper.context's
# audio_context_frames for one clip), with no cs-mage-asr code; a test runs it.
CT2_SHORT_CONTEXT_USAGE = """import json, math
import ctranslate2, numpy as np, soundfile as sf
from huggingface_hub import snapshot_download
from transformers import WhisperProcessor

path = snapshot_download("{model_id}", allow_patterns=["ct2/*", "*.json"])
context = json.load(open(f"{{path}}/generation_config.json")).get("audio_context", "auto")
audio, rate = sf.read("clip.wav", dtype="float32")  # 16 kHz mono
floor = 30.0 if context == "full" else 10.0 if context == "auto" else float(context)
seconds = min(30.0, max(floor, 5 * math.ceil((len(audio) / rate + 1) / 5)))
processor = WhisperProcessor.from_pretrained(path)
features = processor.feature_extractor(audio, sampling_rate=rate, return_tensors="np").input_features
features = np.ascontiguousarray(features[:, :, : round(seconds * 100)])
model = ctranslate2.models.Whisper(f"{{path}}/ct2", compute_type="int8")
prompt = ["<|startoftranscript|>", "<|zh|>", "<|transcribe|>", "<|notimestamps|>"]
result = model.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1)
print(processor.tokenizer.decode(result[0].sequences_ids[0], skip_special_tokens=True))"""


def usage(model_id: str, ct2_quantization: str | None = None) -> list[str]:
    call = 'print(asr("clip.wav", generate_kwargs={"language": "zh", "task": "transcribe"})["text"])'
    lines = [
        *pipeline_usage(model_id, call),
        "The generation config already selects Chinese transcription without timestamps. "
        "Audio longer than 30 s needs `chunk_length_s=30` in the pipeline.",
        "",
        "`audio_context` in `generation_config.json` is the audio context the model was "
        "fine-tuned at (`auto`: each batch's longest clip + 1 s, at least 10 s, instead of "
        "Whisper's 30 s). cs-mage-asr (`asr evaluate`) decodes at it by default; the "
        "transformers pipeline above always feeds 30 s, which a model fine-tuned at a shorter "
        "context may transcribe less accurately.",
        "",
    ]
    if ct2_quantization:
        lines += [
            f"A CTranslate2 copy ({ct2_quantization}) for faster-whisper is in `ct2/`:",
            "",
            *python_block(
                "from faster_whisper import WhisperModel",
                "from huggingface_hub import snapshot_download",
                "",
                f'path = snapshot_download("{model_id}", allow_patterns=["ct2/*"])',
                'model = WhisperModel(f"{path}/ct2", compute_type="int8")',
                'segments, _ = model.transcribe("clip.wav", language="zh", beam_size=1)',
            ),
            "faster-whisper always feeds 30 s too. At the fine-tuned `audio_context` (faster, and "
            "how the reported CER was measured), give CTranslate2 the shorter log-mel itself:",
            "",
            *python_block(*CT2_SHORT_CONTEXT_USAGE.format(model_id=model_id).splitlines()),
        ]
    return lines


def limitations() -> list[str]:
    return ["- Whisper models can hallucinate on silence or long audio; feed single utterances."]
