"""Card text for the funasr family (Paraformer, SenseVoice) run by funasr's ``AutoModel``."""

from __future__ import annotations

from asr.export.cards.blocks import python_block


def usage(model_id: str, ct2_quantization: str | None = None) -> list[str]:
    return [
        *python_block(
            "from funasr import AutoModel",
            "",
            'model = AutoModel(model="path/to/this/folder", disable_update=True)',
            'print(model.generate(input="clip.wav")[0]["text"])',
        ),
        "Download the repository first (`huggingface_hub.snapshot_download`); `model.pt` holds the "
        "weights funasr reads (a plain state dict of tensors), `model.safetensors` the same weights.",
        "",
    ]


def limitations() -> list[str]:
    return []
