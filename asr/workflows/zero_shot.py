"""One registered model (or a model folder) evaluated zero-shot on a manifest, resumably.

Shared by ``asr zero-shot`` and ``asr benchmark``: loads the model, records the run's settings
(``run.json``; a resumed run must match them), evaluates with ``resume=True`` and writes the
HTML error report (``report.html``).
"""

from __future__ import annotations

from pathlib import Path

from asr.data.manifest import read_manifest
from asr.inference import (
    EvalResult,
    EvalSettings,
    choose_backend,
    evaluate,
    run_settings,
    save_run_settings,
)
from asr.models import load_model
from asr.models.spec import DecodeOptions
from asr.report.html import write_error_report


def evaluate_model(
    name: str,
    manifest: Path,
    out: Path,
    *,
    device: str = "auto",
    limit: int | None = None,
    beam_size: int = 1,
    progress: bool = True,
    backend: str = "auto",
) -> EvalResult:
    """Evaluate ``name`` on ``manifest`` into ``out`` (continues an earlier run with the same settings)."""
    utts = read_manifest(manifest)[:limit]
    model = load_model(name, device=device)
    choose_backend(model, backend, resume_dir=out)
    decode = DecodeOptions(beam_size=beam_size, language=model.spec.language)
    settings = EvalSettings(batch_size=model.spec.eval_batch_size, decode=decode, progress=progress)
    save_run_settings(out, run_settings(model, name, manifest, limit, settings), resume=True)
    result = evaluate(model, utts, out, settings, resume=True, model_source=name)
    write_error_report(out)
    return result
