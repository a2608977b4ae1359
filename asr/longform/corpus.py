"""``asr segment``'s library call: recordings cut into a new corpus in the CS-Mage layout.

Output folder (``asr prepare --data-root`` reads it as it reads CS-Mage)::

    audio_wav/VV_CCCC.wav      16 kHz mono 16-bit clips; input file k is video V = first + k
    CS-Mage_fulldata.pkl       id (video_V_C), raw_text, verified, source, start, end (lists)
    draft.tsv                  the same rows to correct by hand (then ``asr segment --apply-draft``)
    sources.json               media file -> video number, clip count, done
    README.md                  says the transcripts are an unverified model draft

Every file is rewritten atomically after each media file, so a killed run keeps the finished
files, and a rerun skips them.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asr.data.audio import write_wav
from asr.data.csmage import AUDIO_FOLDER, PKL_NAMES
from asr.data.ids import to_source_id
from asr.errors import DataError
from asr.io import check_output_dir, read_json, write_bytes, write_json, write_text
from asr.longform.pipeline import MediaJob, Piece, PipelineSettings, Transcriber, run_pipeline
from asr.longform.transcribe import BatchReport, probe_jobs

log = logging.getLogger(__name__)

DRAFT = "draft.tsv"
SOURCES = "sources.json"
COLUMNS = ("id", "verified", "text", "source", "start", "end")
README = """# Draft corpus cut by `asr segment`

Clips in `audio_wav/` (16 kHz mono WAV, CS-Mage ids: `video_V_C` is `audio_wav/VV_CCCC.wav`),
cut at pauses found by silero-vad. `sources.json` says which recording each video number is;
`draft.tsv` gives each clip's start and end (seconds) in it.

**The transcripts are UNVERIFIED: {model}'s output, not a person's.** Every row has
`verified` = `no`. Correct `text` in `draft.tsv`, set `verified` to `yes`, delete rows of clips
to leave out, then rebuild the pickle and prepare the corpus:

    asr segment --apply-draft {out}
    asr prepare --data-root {out} --out prepared --protocol random
"""


def _fmt_row(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "verified": "yes" if row["verified"] else "no"}


def write_corpus(out: Path, rows: list[dict[str, Any]], model_name: str) -> None:
    """Rewrite draft.tsv, the pkl and README.md from ``rows`` (atomic writes)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, COLUMNS, delimiter="\t", lineterminator="\n")
    writer.writeheader()
    writer.writerows(_fmt_row(r) for r in rows)
    write_text(out / DRAFT, buffer.getvalue())
    table = {key: [r[key] for r in rows] for key in ("id", "verified", "source", "start", "end")}
    table["raw_text"] = [r["text"] for r in rows]
    write_bytes(out / PKL_NAMES[0], pickle.dumps(table, protocol=4))
    write_text(out / "README.md", README.format(model=model_name or "no model (empty)", out=out))


def read_draft(out: Path) -> list[dict[str, Any]]:
    """The rows of ``draft.tsv`` (``verified`` as a bool, times as floats).

    A hand-edited file is checked row by row: a :class:`DataError` names the line and the
    problem (a decimal comma, a short row, an unknown id, a file not saved as UTF-8).
    Excel's UTF-8 with a byte-order mark reads as plain UTF-8.
    """
    path = out / DRAFT
    if not path.is_file():
        return []
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 (byte {err.start}); save it as UTF-8 (a GBK or ANSI save changes the text)"
        ) from None
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing:
        raise DataError(
            f"{path}: missing columns {', '.join(missing)} (the header must be {' '.join(COLUMNS)})"
        )
    return [_draft_row(path, n, row) for n, row in enumerate(rows, start=2)]


def _draft_row(path: Path, line: int, row: dict[str, Any]) -> dict[str, Any]:
    if None in row or any(row.get(c) is None for c in COLUMNS):
        fields = sum(v is not None for k, v in row.items() if k is not None)
        raise DataError(
            f"{path}:{line}: {fields} tab-separated fields, expected {len(COLUMNS)} ({' '.join(COLUMNS)})"
        )
    flag = row["verified"].strip().lower()
    if flag not in ("yes", "no"):
        raise DataError(f"{path}:{line}: verified must be yes or no, not {row['verified']!r}")
    try:
        to_source_id(row["id"])
    except ValueError:
        raise DataError(f"{path}:{line}: id {row['id']!r} is not a clip id like video_1_1") from None
    times = {}
    for key in ("start", "end"):
        try:
            times[key] = float(row[key])
        except ValueError:
            times[key] = math.nan
        if not math.isfinite(times[key]) or times[key] < 0:
            raise DataError(
                f"{path}:{line}: {key} must be seconds written with a dot (e.g. 1.5), not {row[key]!r}"
            )
    return {**row, "verified": flag == "yes", **times}


def apply_draft(out: Path) -> int:
    """Rebuild the pkl from a corrected ``draft.tsv``; returns the number of clips kept."""
    rows = read_draft(out)
    if not rows:
        raise DataError(f"{out / DRAFT}: no clips (is {out} an `asr segment` output folder?)")
    for line, row in enumerate(rows, start=2):
        wav = out / AUDIO_FOLDER / f"{to_source_id(row['id'])}.wav"
        if not wav.is_file():
            raise DataError(f"{out / DRAFT}:{line}: {row['id']} has no clip {wav} (a typo in the id?)")
    model = read_json(out / SOURCES).get("model", "") if (out / SOURCES).is_file() else ""
    write_corpus(out, rows, model)
    return len(rows)


class CorpusSink:
    """Writes each decoded piece as a clip and, per finished file, the tables."""

    def __init__(self, out: Path, sources: dict[str, Any], rows: list[dict[str, Any]], report: BatchReport):
        self.out, self.sources, self.rows, self.report = out, sources, rows, report
        self.pending: dict[int, list[dict[str, Any]]] = {}

    def video(self, job: MediaJob) -> int:
        return self.sources["files"][str(job.path.resolve())]["video"]

    def piece(self, job: MediaJob, piece: Piece) -> None:
        clip_id = f"video_{self.video(job)}_{piece.index + 1}"
        write_wav(self.out / AUDIO_FOLDER / f"{to_source_id(clip_id)}.wav", piece.wave)
        row = {"id": clip_id, "verified": False, "text": piece.text, "source": str(job.path)}
        row.update(start=round(piece.start, 3), end=round(piece.end, 3))
        self.pending.setdefault(job.index, []).append(row)

    def finish(self, job: MediaJob) -> None:
        rows = sorted(self.pending.pop(job.index, []), key=lambda r: r["start"])
        if not rows:
            self.report.silent.append(job.path)
            log.warning("%s: no speech found; no clips", job.path)
        self.rows.extend(rows)
        entry = self.sources["files"][str(job.path.resolve())]
        entry.update(clips=len(rows), done=True)
        write_corpus(self.out, self.rows, self.sources.get("model", ""))
        write_json(self.out / SOURCES, self.sources)
        self.report.done.append(job.path)

    def fail(self, job: MediaJob, message: str) -> None:
        self.pending.pop(job.index, None)
        _remove_clips(self.out, self.video(job))
        self.report.failed[job.path] = message
        log.error("%s", message)


def _remove_clips(out: Path, video: int) -> None:
    prefix = to_source_id(f"video_{video}_1")[: -len("_0001")]
    for wav in (out / AUDIO_FOLDER).glob(f"{prefix}_*.wav"):
        wav.unlink()


def _register(paths: Sequence[Path], sources: dict[str, Any], first_video: int) -> list[Path]:
    """Give new files video numbers; return the files still to do (clips of unfinished ones removed)."""
    files = sources.setdefault("files", {})
    todo = []
    for path in paths:
        key = str(path.resolve())
        if key in files and files[key].get("done"):
            continue
        if key not in files:
            used = [f["video"] for f in files.values()]
            files[key] = {"video": max([first_video - 1, *used]) + 1, "clips": 0, "done": False}
        todo.append(path)
    return todo


def segment_media(
    paths: Sequence[Path],
    out: Path,
    transcriber: Transcriber | None,
    model_name: str,
    settings: PipelineSettings,
    first_video: int = 1,
) -> BatchReport:
    """Cut every file of ``paths`` into clips under ``out`` (see the module docstring)."""
    check_output_dir(out)
    sources = read_json(out / SOURCES) if (out / SOURCES).is_file() else {"model": model_name, "files": {}}
    rows = [r for r in read_draft(out)]
    report = BatchReport()
    todo = _register(paths, sources, first_video)
    report.skipped = [p for p in paths if p not in todo]
    finished = {f["video"] for f in sources["files"].values() if f.get("done")}
    for path in todo:
        video = sources["files"][str(path.resolve())]["video"]
        if video not in finished:
            _remove_clips(out, video)
    jobs = probe_jobs(todo, report)
    write_json(out / SOURCES, sources)
    sink = CorpusSink(out, sources, rows, report)
    report.stats = run_pipeline(jobs, transcriber, sink, settings)
    return report
