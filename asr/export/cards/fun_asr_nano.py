"""Card text for Fun-ASR-Nano (a funasr speech encoder + Qwen3 LLM, loaded by funasr's AutoModel)."""

from __future__ import annotations

from asr.export.cards.blocks import python_block


def usage(model_id: str, ct2_quantization: str | None = None) -> list[str]:
    return [
        *python_block(
            "from funasr import AutoModel",
            "",
            "# run in the downloaded folder: funasr reads llm_conf.init_param_path (Qwen3-0.6B) from the cwd",
            'model = AutoModel(model=".", disable_update=True)',
            'print(model.generate(input=["clip.wav"], language="中文")[0]["text"])',
        ),
    ]


def limitations() -> list[str]:
    return ["- LLM decoders can loop or run on past the speech; feed single utterances."]
