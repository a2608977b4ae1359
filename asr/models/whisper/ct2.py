"""CTranslate2 for the Whisper family: the one transformers -> CTranslate2 conversion
(:func:`convert_checkpoint`, used by ``asr export --ct2`` too) and the decoding backend
(``asr evaluate --backend ct2``).

For decoding, the transformers checkpoint is converted once (LoRA merged first, in fp32 on
the CPU) into a cache folder named by the checkpoint's content and the quantization, then
batches of the same log-mel features the torch path uses are decoded with
``ctranslate2.models.Whisper.generate``. int8 on CPU, float16 on GPU by default.

ctranslate2 4.x is built against CUDA 12 (cuBLAS 12, cuDNN 9); the pinned torch brings CUDA 13
libraries. Without the CUDA 12 ones on the library path a GPU run stops with a
:class:`ConfigError` saying so (see :func:`cuda_runtime_error`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from asr.errors import ASRError, ConfigError
from asr.io import asr_home
from asr.models.guard import guard_tokens
from asr.models.whisper.decoding import DecodeLimits, Prompt

log = logging.getLogger(__name__)

COPY_FILES = ("tokenizer.json", "preprocessor_config.json")  # faster-whisper reads them next to model.bin


def _cache_root() -> Path:
    return asr_home() / "ct2-cache"


def content_fingerprint(*model_dirs: Path) -> str:
    """Cache key of checkpoint folders by content: the bytes of their safetensors and JSON files.

    Not their path or times, so a LoRA model merged into a new temporary folder on every run
    (or a copied checkpoint) finds its earlier conversion.
    """
    h = hashlib.sha256()
    for model_dir in model_dirs:
        files = sorted(model_dir.glob("*.safetensors")) + sorted(model_dir.glob("*.json"))
        h.update(f"{len(files)}\n".encode())
        for f in files:
            h.update(f"{f.name}\n".encode())
            with f.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 24), b""):
                    h.update(chunk)
            h.update(b"\n")
    return h.hexdigest()[:16]


def installed() -> bool:
    """Whether ctranslate2 can be imported (the ``ct2`` extra), without importing it."""
    import importlib.util

    try:
        return importlib.util.find_spec("ctranslate2") is not None
    except (ImportError, ValueError):  # ValueError: sys.modules holds None for it (blocked)
        return False


def cached_conversion(
    hf_dir: Path | None,
    compute_type: str,
    *,
    key: str | None = None,
    write_hf: Callable[[Path], None] | None = None,
) -> Path:
    """The CTranslate2 copy of a checkpoint at ``compute_type`` in the cache, converted if absent.

    ``key`` (default: the content of ``hf_dir``) names it; ``write_hf`` writes the checkpoint
    into a folder it is given when there is no ``hf_dir`` (called only on a cache miss).
    """
    out = _cache_root() / f"{key or content_fingerprint(hf_dir)}-{compute_type}"
    if not (out / "model.bin").is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        if hf_dir is not None:
            convert_checkpoint(hf_dir, out, compute_type)
        else:
            import tempfile

            with tempfile.TemporaryDirectory(prefix="asr-merged-") as tmp:
                write_hf(Path(tmp))
                convert_checkpoint(Path(tmp), out, compute_type)
    return out


def default_compute_type(device: Any) -> str:
    """float16 on a GPU, int8 on the CPU."""
    return "float16" if _device_type(device) == "cuda" else "int8"


def _torch_threads() -> int:
    """The threads torch decodes with (``OMP_NUM_THREADS``, ``torch.set_num_threads``), so both
    backends run under the same setting."""
    try:
        import torch

        return int(torch.get_num_threads())
    except ImportError:
        return os.cpu_count() or 1


def _device_type(device: Any) -> str:
    return str(device).split(":", 1)[0]


def _device_index(device: Any) -> int:
    """The GPU index of ``cuda:N`` (``cuda`` alone: torch's current device); 0 on the CPU."""
    text = str(device)
    if ":" in text:
        return int(text.split(":", 1)[1])
    if text == "cuda":
        try:
            import torch

            if torch.cuda.is_available():
                return int(torch.cuda.current_device())
        except (ImportError, RuntimeError):
            pass
    return 0


_CUDA_LIBRARY_MARKERS = ("libcublas", "cublas", "libcudnn", "cudnn", "libcudart")


def cuda_runtime_error(err: BaseException, device: str) -> ConfigError | None:
    """A clear error for CTranslate2 failing to load its CUDA 12 libraries (None for other errors).

    ctranslate2 4.x wheels are built against CUDA 12 cuBLAS/cuDNN 9; the pinned torch ships
    CUDA 13 libraries, so ``libcublas.so.12`` may be nowhere on the library path.
    """
    text = str(err)
    if _device_type(device) != "cuda" or not any(m in text.lower() for m in _CUDA_LIBRARY_MARKERS):
        return None
    try:
        from importlib.metadata import version

        ct2_version = version("ctranslate2")
    except Exception:
        ct2_version = "?"
    return ConfigError(
        f"--backend ct2 on {device}: CTranslate2 {ct2_version} needs the CUDA 12 runtime libraries "
        f"(cuBLAS 12 and cuDNN 9 for CUDA 12), which it could not load ({text.strip()}). The torch "
        "installed here ships CUDA 13 libraries, which CTranslate2 cannot use. Either decode with "
        "--backend torch, or install the CUDA 12 libraries into this environment, e.g. "
        "`pip install nvidia-cublas-cu12 nvidia-cudnn-cu12==9.*`, and add their lib folders "
        "(site-packages/nvidia/cublas/lib and site-packages/nvidia/cudnn/lib) to LD_LIBRARY_PATH."
    )


@contextlib.contextmanager
def cuda_errors_explained(device: str) -> Iterator[None]:
    """Re-raise CTranslate2's failure to load its CUDA 12 libraries as :func:`cuda_runtime_error`."""
    try:
        yield
    except (RuntimeError, OSError) as err:
        clear = cuda_runtime_error(err, device)
        if clear is not None:
            raise clear from err
        raise


def _model_type(model_dir: Path) -> str:
    config = model_dir / "config.json"
    if not config.is_file():
        return ""
    try:
        return str(json.loads(config.read_text(encoding="utf-8")).get("model_type", ""))
    except ValueError as err:
        raise ASRError(f"{config}: unreadable ({err})") from err


def convert_checkpoint(
    hf_dir: Path, out_dir: Path, quantization: str, *, require_files: bool = False
) -> Path:
    """transformers Whisper dir -> CTranslate2 dir, with :data:`COPY_FILES` copied next to ``model.bin``.

    ``require_files``: refuse a folder that lacks one of them (an export for faster-whisper).
    The model is converted into a ``.partial`` folder beside ``out_dir``, then renamed.
    """
    if _model_type(hf_dir) != "whisper":
        raise ASRError(
            f"{hf_dir}: CTranslate2 export supports Whisper only (faster-whisper); "
            "this model is not a transformers Whisper checkpoint"
        )
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError as err:
        raise ASRError("CTranslate2 is not installed: pip install 'cs-mage-asr[ct2]'") from err
    copy = [f for f in COPY_FILES if (hf_dir / f).is_file()]
    missing = [f for f in COPY_FILES if f not in copy]
    if require_files and missing:
        raise ASRError(f"{hf_dir}: {', '.join(missing)} missing; faster-whisper needs them next to model.bin")
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("converting %s to CTranslate2 (%s) in %s", hf_dir, quantization, out_dir)
    try:
        TransformersConverter(str(hf_dir), copy_files=copy).convert(
            str(tmp), quantization=quantization, force=True
        )
    except (NotImplementedError, RuntimeError, ValueError, OSError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ASRError(f"CTranslate2 conversion of {hf_dir} failed: {err}") from err
    shutil.rmtree(out_dir, ignore_errors=True)
    tmp.rename(out_dir)
    return out_dir


class CT2WhisperEngine:
    """Batched greedy/beam decoding of Whisper log-mel features with CTranslate2 (a
    :class:`~asr.models.whisper.decoding.WhisperDecoder`).

    ``hf_dir``: the transformers checkpoint to convert (when not cached yet). ``key``: the
    cache key (default: the content of ``hf_dir``). ``write_hf``: instead of ``hf_dir``, writes
    the checkpoint into a folder it is given, called only when the conversion is not cached.
    ``device``: ``cpu``, ``cuda`` or ``cuda:N`` (a ``torch.device`` too). ``threads``: CPU
    threads (default: as many as torch uses).
    """

    def __init__(
        self,
        hf_dir: Path | None,
        device: Any,
        compute_type: str | None = None,
        threads: int = 0,
        *,
        key: str | None = None,
        write_hf: Callable[[Path], None] | None = None,
    ):
        import ctranslate2

        if hf_dir is None and (key is None or write_hf is None):
            raise ValueError("CT2WhisperEngine needs hf_dir, or key and write_hf")
        device_type = _device_type(device)
        self.device = device_type
        self.device_index = _device_index(device)
        self.compute_type = compute_type or default_compute_type(device_type)
        out = cached_conversion(hf_dir, self.compute_type, key=key, write_hf=write_hf)
        self.path = out
        with cuda_errors_explained(f"{device_type}:{self.device_index}"):
            self.model = ctranslate2.models.Whisper(
                str(out),
                device=device_type,
                device_index=self.device_index,
                compute_type=self.compute_type,
                intra_threads=threads or _torch_threads(),
            )

    def generate(
        self, features: np.ndarray, prompt: Prompt, limits: DecodeLimits, timestamps: bool
    ) -> list[list[int]]:
        """:class:`~asr.models.whisper.decoding.WhisperDecoder` on CTranslate2: Whisper's timestamp
        rules apply when the prompt lacks ``<|notimestamps|>``; the guard cuts each greedy result."""
        import ctranslate2

        tokens = prompt.tokens(timestamps)
        # cuBLAS/cuDNN may load only at the first GPU computation
        with cuda_errors_explained(f"{self.device}:{self.device_index}"):
            results = self.model.generate(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32)),
                [tokens] * len(features),
                beam_size=limits.beam_size,
                max_length=len(tokens) + max(limits.caps),
                suppress_blank=True,
                suppress_tokens=[-1],
            )
        seqs = [prompt.new_tokens(r.sequences_ids[0], timestamps) for r in results]
        if limits.guard is not None:
            return [guard_tokens(s, c, limits.guard) for s, c in zip(seqs, limits.caps, strict=True)]
        return seqs

    def settings(self) -> dict[str, Any]:
        return {"backend": "ct2", "compute_type": self.compute_type, "ct2_model": str(self.path)}
