"""Card text for the speech encoder + LLM family (Qwen3-ASR, GLM-ASR: plain transformers)."""

from __future__ import annotations

from asr.export.cards.blocks import python_block


def usage(model_id: str, ct2_quantization: str | None = None) -> list[str]:
    return [
        *python_block(
            "import soundfile as sf",
            "from transformers import AutoModelForSeq2SeqLM, AutoProcessor",
            "",
            f'processor = AutoProcessor.from_pretrained("{model_id}")',
            f'model = AutoModelForSeq2SeqLM.from_pretrained("{model_id}")',
            'audio, rate = sf.read("clip.wav", dtype="float32")  # 16 kHz mono',
            'inputs = processor.apply_transcription_request(audio)  # Qwen3-ASR: language="zh" forces Chinese',
            "out = model.generate(**inputs, do_sample=False)",
            'text = processor.tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)',
            'print(text.rpartition("<asr_text>")[2].strip())  # Qwen3-ASR writes "language X<asr_text>" first',
        ),
    ]


def limitations() -> list[str]:
    return ["- LLM decoders can loop or run on past the speech; feed single utterances."]
