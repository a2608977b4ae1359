"""CTranslate2 decoding backend for the Whisper family (``asr evaluate --backend ct2``).

The transformers checkpoint is converted once with ctranslate2's own converter (LoRA
merged first) into a cache folder, then batches of the same log-mel features the
torch path uses are decoded with ``ctranslate2.models.Whisper.generate``. int8 on CPU,
float16 on GPU by default.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import ASRError
from asr.models.guard import guard_tokens, token_caps
from asr.models.spec import DecodeOptions

log = logging.getLogger(__name__)

COPY_FILES = ("tokenizer.json", "preprocessor_config.json")


def _cache_root() -> Path:
    return Path(os.environ.get("ASR_HOME", Path.home() / ".cache" / "cs-mage-asr")).expanduser() / "ct2-cache"


def _fingerprint(model_dir: Path) -> str:
    h = hashlib.sha256(str(model_dir.resolve()).encode())
    for f in sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.json")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def convert_checkpoint(hf_dir: Path, out_dir: Path, quantization: str) -> Path:
    """transformers Whisper dir -> CTranslate2 dir (tokenizer/preprocessor copied)."""
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as err:
        raise ASRError("the ct2 backend needs the ct2 extra: pip install 'cs-mage-asr[ct2]'") from err
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    copy = [f for f in COPY_FILES if (hf_dir / f).is_file()]
    TransformersConverter(str(hf_dir), copy_files=copy).convert(
        str(tmp), quantization=quantization, force=True
    )
    os.replace(tmp, out_dir)
    return out_dir


class CT2WhisperEngine:
    """Batched greedy/beam decoding of Whisper log-mel features with CTranslate2."""

    def __init__(self, hf_dir: Path, device: str, compute_type: str | None = None, threads: int = 0):
        import ctranslate2

        self.compute_type = compute_type or ("float16" if device == "cuda" else "int8")
        out = _cache_root() / f"{_fingerprint(hf_dir)}-{self.compute_type}"
        if not (out / "model.bin").is_file():
            log.info("converting %s to CTranslate2 (%s) in %s", hf_dir, self.compute_type, out)
            out.parent.mkdir(parents=True, exist_ok=True)
            convert_checkpoint(hf_dir, out, self.compute_type)
        self.path = out
        self.model = ctranslate2.models.Whisper(
            str(out),
            device=device,
            compute_type=self.compute_type,
            intra_threads=threads or (os.cpu_count() or 1),
        )

    def generate(
        self,
        features: np.ndarray,
        prompt: list[int],
        options: DecodeOptions,
        durations: list[float],
        cap: int,
    ) -> list[list[int]]:
        import ctranslate2

        caps = (
            [min(c, cap) for c in token_caps(durations, options)] if options.guard else [cap] * len(durations)
        )
        results = self.model.generate(
            ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32)),
            [prompt] * len(durations),
            beam_size=options.beam_size,
            max_length=len(prompt) + max(caps),
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        seqs = [r.sequences_ids[0] for r in results]
        if options.guard:
            return [guard_tokens(s, c, options) for s, c in zip(seqs, caps, strict=True)]
        return seqs

    def settings(self) -> dict[str, Any]:
        return {"backend": "ct2", "compute_type": self.compute_type, "ct2_model": str(self.path)}
