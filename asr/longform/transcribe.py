"""``asr transcribe``'s library call: media files in, subtitle and transcript files out.

Outputs are ``<out>/<stem>.<format>`` (beside each file without ``out``), each written
atomically once its file is fully decoded; a file whose outputs all exist is skipped, so a
rerun over many files loses no work. Missing, undecodable or audio-less files are reported
by name and the others go on; a file with no speech gets empty outputs and a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from asr.errors import ASRError, ConfigError
from asr.io import check_output_dir, write_text
from asr.longform.media import probe_duration
from asr.longform.pipeline import MediaJob, Piece, PipelineSettings, Transcriber, run_pipeline
from asr.longform.subtitles import FORMATS, Cue, render

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    """What happened to each input file, and the timing totals of the run."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    silent: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)


def parse_formats(value: str) -> tuple[str, ...]:
    """``"srt,vtt"`` -> ``("srt", "vtt")``; a clear error for unknown names."""
    names = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [n for n in names if n not in FORMATS]
    if unknown or not names:
        raise ConfigError(f"--format {value!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return names


def output_paths(media: Path, out_dir: Path | None, formats: Sequence[str]) -> dict[str, Path]:
    folder = out_dir if out_dir is not None else media.parent
    return {fmt: folder / f"{media.stem}.{fmt}" for fmt in formats}


def probe_jobs(paths: Sequence[Path], report: BatchReport) -> list[MediaJob]:
    """A job per readable file (header checked); the others go to ``report.failed`` with the reason."""
    jobs = []
    for path in paths:
        try:
            jobs.append(MediaJob(len(jobs), path, probe_duration(path)))
        except ASRError as err:
            report.failed[path] = str(err)
            log.error("%s", err)
    return jobs


class SubtitleSink:
    """Writes each finished file's formats; remembers which had no speech."""

    def __init__(self, outputs: dict[Path, dict[str, Path]], model_name: str, report: BatchReport) -> None:
        self.outputs, self.model_name, self.report = outputs, model_name, report

    def piece(self, job: MediaJob, piece: Piece) -> None:
        return None

    def finish(self, job: MediaJob) -> None:
        cues = [Cue(p.start, p.end, p.text) for p in job.pieces]
        meta = {"media": str(job.path), "model": self.model_name, "duration": round(job.seconds, 3)}
        for fmt, target in self.outputs[job.path].items():
            write_text(target, render(fmt, cues, **meta))
        if not any(c.text.strip() for c in cues):
            self.report.silent.append(job.path)
            log.warning("%s: no speech found (%s); wrote empty outputs", job.path, _why(job.pieces))
        self.report.done.append(job.path)

    def fail(self, job: MediaJob, message: str) -> None:
        self.report.failed[job.path] = message
        log.error("%s", message)


def _why(pieces: list[Piece]) -> str:
    return "the VAD found none" if not pieces else f"{len(pieces)} pieces, all transcribed empty"


def transcribe_media(
    paths: Sequence[Path],
    transcriber: Transcriber,
    model_name: str,
    settings: PipelineSettings,
    out_dir: Path | None = None,
    formats: Sequence[str] = ("srt", "vtt", "json"),
    overwrite: bool = False,
) -> BatchReport:
    """Transcribe every file in ``paths`` (see the module docstring)."""
    if out_dir is not None:
        check_output_dir(out_dir)
    outputs = {Path(p): output_paths(Path(p), out_dir, formats) for p in paths}
    _refuse_clashes(outputs)
    report = BatchReport()
    todo = []
    for path, targets in outputs.items():
        if not overwrite and all(t.is_file() for t in targets.values()):
            report.skipped.append(path)
        else:
            todo.append(path)
    if report.skipped:
        log.info(
            "%d of %d files already transcribed (pass --overwrite to redo them)",
            len(report.skipped),
            len(paths),
        )
    jobs = probe_jobs(todo, report)
    report.stats = run_pipeline(jobs, transcriber, SubtitleSink(outputs, model_name, report), settings)
    return report


def _refuse_clashes(outputs: dict[Path, dict[str, Path]]) -> None:
    seen: dict[Path, Path] = {}
    for media, targets in outputs.items():
        for target in targets.values():
            if target in seen and seen[target] != media:
                raise ASRError(
                    f"{seen[target]} and {media} would both write {target}; transcribe them into different --out folders"
                )
            seen[target] = media
