"""What every funasr-loaded family shares for export: the weights check, ``model.pt``, the card's library."""

from __future__ import annotations

from pathlib import Path

from asr.errors import ModelSourceError
from asr.models.funasr.checkpoint import NATIVE_WEIGHTS_FILE, SAFETENSORS_FILE, write_native_weights


class FunasrExport:
    """Mixin for an :class:`~asr.models.base.ASRModel` whose exports funasr's ``AutoModel`` loads."""

    @classmethod
    def check_full_weights(cls, path: Path) -> None:
        if not (path / SAFETENSORS_FILE).is_file() and not (path / NATIVE_WEIGHTS_FILE).is_file():
            raise ModelSourceError(f"{path}: config.yaml but no {SAFETENSORS_FILE} or {NATIVE_WEIGHTS_FILE}")

    def save_export(self, out_dir: Path) -> None:
        """Also write ``model.pt`` (tensors only): funasr's ``AutoModel`` reads nothing else."""
        self.save(out_dir)  # type: ignore[attr-defined]
        write_native_weights(Path(out_dir))

    @classmethod
    def card_library(cls, adapter: bool) -> str:
        return "funasr"
