"""A throughput model on paper: FLOPs per training clip and per decoded clip, and the utterances/s
that 40% of an H100's dense bf16 peak would give (BENCHMARKS.md "Throughput model").

    python -m benchmarks.throughput_model          # the Markdown table

Counted: the matrix multiplications (2 FLOPs per multiply-add) of every linear layer, convolution
and attention product; not counted: normalisation, activations, softmax, the optimizer. Per clip:
a CS-Mage-like 5 s clip with 26 transcript tokens (about 4 characters/s, 1.3 tokens a character).
Training: forward F, backward 2F for full fine-tuning (3F in all); LoRA computes no weight
gradients of the frozen base, so about 2F (Qwen3-ASR: the encoder runs forward only and gradient
checkpointing recomputes the LLM's forward: F_enc + 3 F_llm). Decoding: greedy with a key/value
cache, one forward over the clip (F, the LM head on the generated tokens only). Whisper pads every
clip to its audio context (30 s unless ``audio_context`` says less); Qwen3-ASR's encoder sees the
clip's own length, at 12.5 positions per second (three stride-2 convolutions over 100 mel frames/s).
Pure Python (no torch): ``tools.gpu_sections`` divides its measured utterances/s by these figures.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

H100_BF16_DENSE_FLOPS = 989.4e12  # H100 SXM, dense (no sparsity)
UTILISATION = 0.40
CLIP_SECONDS = 5.0
TEXT_TOKENS = 26


@dataclass(frozen=True)
class Whisper:
    d: int
    encoder_layers: int
    decoder_layers: int
    ffn: int
    mels: int
    vocab: int = 51865

    def encoder(self, context: float) -> float:
        frames, n = 100 * context, 50 * context
        conv = 2 * 3 * self.mels * self.d * frames + 2 * 3 * self.d * self.d * n
        layer = n * (8 * self.d**2 + 4 * self.d * self.ffn) + 4 * n * n * self.d
        return conv + self.encoder_layers * layer

    def decoder(self, context: float, tokens: int) -> float:
        n, d = 50 * context, self.d
        per_token = 12 * d * d + 4 * d * self.ffn + 4 * tokens * d + 4 * n * d  # self + cross attention, FFN
        layer = tokens * per_token + 4 * d * d * n  # cross-attention keys and values of the n frames
        return self.decoder_layers * layer + 2 * d * self.vocab * tokens

    def train(self, method: str, context: float = 30.0) -> float:
        forward = self.encoder(context) + self.decoder(context, TEXT_TOKENS)
        return (3 if method == "full" else 2) * forward

    def decode(self, context: float = 30.0) -> float:
        return self.encoder(context) + self.decoder(context, TEXT_TOKENS)


@dataclass(frozen=True)
class AudioLLM:
    """Qwen3-ASR: a conv-downsampled audio encoder, a projector, a Qwen3 LLM (grouped-query attention)."""

    encoder_d: int
    encoder_layers: int
    encoder_ffn: int
    conv_channels: int
    mels: int
    d: int
    layers: int
    ffn: int
    q_dim: int
    kv_dim: int
    vocab: int
    prompt_tokens: int = 12  # the chat template around the audio

    def encoder(self, seconds: float) -> float:
        c, n = self.conv_channels, 12.5 * seconds
        conv = 2 * 9 * c * (self.mels / 2) * (50 * seconds)  # 1 -> c channels, stride 2
        conv += 2 * 9 * c * c * ((self.mels / 4) * (25 * seconds) + (self.mels / 8) * n)  # c -> c twice
        proj_in = 2 * c * (self.mels / 8) * self.encoder_d * n
        layer = (
            n * (8 * self.encoder_d**2 + 4 * self.encoder_d * self.encoder_ffn) + 4 * n * n * self.encoder_d
        )
        projector = 2 * n * self.encoder_d * self.d
        return conv + proj_in + self.encoder_layers * layer + projector

    def llm(self, positions: float, head_positions: float) -> float:
        d = self.d
        per_token = 2 * (d * self.q_dim + 2 * d * self.kv_dim + self.q_dim * d) + 6 * d * self.ffn
        attention = 4 * positions * positions * self.q_dim
        return self.layers * (positions * per_token + attention) + 2 * d * self.vocab * head_positions

    def sequence(self, seconds: float) -> float:
        return self.prompt_tokens + 12.5 * seconds + TEXT_TOKENS

    def train(self, method: str, seconds: float = CLIP_SECONDS) -> float:
        s = self.sequence(seconds)
        llm = self.llm(s, s)  # the Trainer's forward computes logits at every position
        if method == "full":
            return 3 * (self.encoder(seconds) + llm)
        return self.encoder(seconds) + 3 * llm

    def decode(self, seconds: float = CLIP_SECONDS) -> float:
        return self.encoder(seconds) + self.llm(self.sequence(seconds), TEXT_TOKENS + 1)


MODELS: dict[str, Whisper | AudioLLM] = {
    "whisper-small": Whisper(768, 12, 12, 3072, 80),
    "whisper-large-v3-turbo": Whisper(1280, 32, 4, 5120, 128, 51866),
    "whisper-large-v3": Whisper(1280, 32, 32, 5120, 128, 51866),
    "qwen3-asr-0.6b": AudioLLM(896, 18, 3584, 480, 128, 1024, 28, 3072, 2048, 1024, 151936),
}


def ceiling(flops: float) -> float:
    """Utterances/s at 40% of the H100's dense bf16 peak."""
    return UTILISATION * H100_BF16_DENSE_FLOPS / flops


def model_utt_per_s(name: str, kind: str) -> float:
    """The paper figure for ``kind`` (``lora``, ``full`` or ``decode``) of model ``name``."""
    model = MODELS[name]
    return ceiling(model.decode() if kind == "decode" else model.train(kind))


def table() -> str:
    rows = [
        "| model | GFLOPs per training clip, LoRA / full | utt/s at 40% of H100 bf16, LoRA / full "
        "| GFLOPs per decoded clip | utt/s decoding |",
        "|---|---|---|---|---|",
    ]
    for name, model in MODELS.items():
        lora, full, dec = model.train("lora"), model.train("full"), model.decode()
        rows.append(
            f"| {name} | {lora / 1e9:,.0f} / {full / 1e9:,.0f} | {ceiling(lora):,.0f} / {ceiling(full):,.0f} "
            f"| {dec / 1e9:,.0f} | {ceiling(dec):,.0f} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    sys.exit(0)
