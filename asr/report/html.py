"""The per-evaluation error report: one self-contained ``report.html`` beside ``predictions.csv``.

Per utterance: reference and hypothesis aligned, substitutions / deletions / insertions
coloured, an audio player where the clip is reachable (a path relative to the report, or the
clip inlined as base64 when it is at most ``embed_audio_max_bytes``), flagged repetition loops.
Above the table: the corpus, the corpus numbers, the most frequent confusion pairs and
deleted / inserted characters. The page needs no network: CSS and script are inline, the rows
are embedded as JSON and rendered with ``textContent``, so transcripts are never markup.

>>> write_error_report(Path("runs/eval/whisper-base"))  # doctest: +SKIP
PosixPath('runs/eval/whisper-base/report.html')
"""

from __future__ import annotations

import base64
import json
import logging
import os
from html import escape
from pathlib import Path
from typing import Any

import yaml

from asr.errors import ASRError
from asr.io import write_text
from asr.report.alignment_view import aligned, confusions, repetition_loop
from asr.report.html_assets import CSS, JS
from asr.report.rows import Row, eval_row
from asr.run_dir import CONFIG_FILE, REPORT_FILE

log = logging.getLogger(__name__)

COLUMNS = (("id", "id", "asc"), ("duration", "duration (s)", "desc"), ("group", "speaker / video", "asc"),
           ("cer", "CER", "desc"), ("errors", "S/D/I", "desc"))  # fmt: skip


def _audio_src(audio: str | None, page_dir: Path, embed_max: int) -> str | None:
    if not audio:
        return None
    path = Path(audio)
    if not path.is_file():
        return None
    if embed_max and path.stat().st_size <= embed_max:
        mime = "audio/wav" if path.suffix.lower() == ".wav" else "audio/mpeg"
        return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode('ascii')}"
    return Path(os.path.relpath(path.resolve(), page_dir.resolve())).as_posix()


def page_rows(row: Row, page_dir: Path, embed_max: int = 0) -> list[dict[str, Any]]:
    """The JSON rows the page's script renders."""
    out = []
    for index, u in enumerate(row.utterances()):
        raw = u.get("prediction_raw") or ""
        loop = repetition_loop(raw) or repetition_loop(u.get("prediction") or "")
        out.append(
            {
                "index": index,
                "id": u["id"],
                "duration": u.get("duration"),
                "group": u.get("group"),
                "cer": u.get("cer"),
                "sub": u["sub"],
                "del": u["del"],
                "ins": u["ins"],
                "errors": u["errors"],
                "ref": u.get("ref_norm", ""),
                "hyp": u.get("hyp_norm", ""),
                "segs": aligned(u.get("ref_norm", ""), u.get("hyp_norm", "")),
                "loop": loop,
                "raw": raw if raw and raw != u.get("prediction") else None,
                "audio": _audio_src(u.get("audio"), page_dir, embed_max),
            }
        )
    return out


def _json_for_script(data: Any) -> str:
    """JSON that cannot end the ``<script>`` element it sits in."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _top_table(title: str, pairs: list[tuple[str, int]]) -> str:
    body = "".join(f"<tr><td>{escape(k)}</td><td>{n}</td></tr>" for k, n in pairs) or (
        '<tr><td colspan="2">none</td></tr>'
    )
    return f'<div class="side"><h3>{escape(title)}</h3><table><tr><th>{escape(title)}</th><th>count</th></tr>{body}</table></div>'


def _header(row: Row, n_loops: int) -> str:
    m = row.metrics
    ci = f" (95% CI {m.cer_ci95[0]:.4f}–{m.cer_ci95[1]:.4f})" if m and m.cer_ci95 else ""
    numbers = (
        f"CER <b>{m.cer:.4f}</b>{ci}, S/D/I {m.substitutions}/{m.deletions}/{m.insertions} of "
        f"{m.ref_chars} reference characters, SER {m.ser:.3f}, {m.n_utterances} utterances, "
        f"{n_loops} with a repetition loop"
        if m
        else "no metrics"
    )
    facts = [
        f"Data: {escape(row.corpus.headline())}",
        numbers,
        *([f"Command: <code>{escape(row.command)}</code>"] if row.command else []),
        *([f"Commit {escape(row.commit)}, {escape(row.date or '')}"] if row.commit else []),
    ]
    return "".join(f'<p class="meta">{f}</p>' for f in facts)


def _controls(groups: list[str]) -> str:
    options = "".join(f'<option value="{escape(g)}">{escape(g)}</option>' for g in groups)
    return (
        '<div id="controls">'
        '<label>text or id <input id="f-text" type="search"></label>'
        '<label>duration (s) <input id="f-dmin" type="number" step="0.1" min="0"> to '
        '<input id="f-dmax" type="number" step="0.1" min="0"></label>'
        f'<label>speaker <select id="f-speaker"><option value="">all</option>{options}</select></label>'
        '<label><input id="f-loops" type="checkbox"> loops only</label>'
        '<label><input id="f-errors" type="checkbox"> with errors only</label>'
        '<span id="count"></span></div>'
    )


def render_page(row: Row, page_dir: Path, embed_max: int = 0) -> str:
    """The whole page as a string."""
    rows = page_rows(row, page_dir, embed_max)
    top = confusions([r["segs"] for r in rows])
    loops = [r for r in rows if r["loop"] is not None]
    groups = sorted({r["group"] for r in rows if r["group"]})
    heads = "".join(
        f'<th data-sort="{key}" data-first="{first}">{escape(label)}</th>' for key, label, first in COLUMNS
    )
    loop_items = (
        "".join(f"<li>{escape(r['id'])}: “{escape(r['loop'])}” repeated</li>" for r in loops)
        or "<li>none</li>"
    )
    title = f"Error report: {row.label}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="zh"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{CSS}</style></head><body>"
        f"<h1>{escape(title)}</h1>{_header(row, len(loops))}"
        '<p class="legend"><span class="S">substitution</span><span class="D">deletion</span>'
        '<span class="I">insertion</span> (normalized text, as scored)</p>'
        '<h2>Most frequent errors</h2><div id="confusions">'
        + _top_table("substitutions (ref→hyp)", top["substitutions"])
        + _top_table("deleted characters", top["deletions"])
        + _top_table("inserted characters", top["insertions"])
        + f'</div><h2>Repetition loops</h2><ul id="loops">{loop_items}</ul>'
        f"<h2>Utterances</h2>{_controls(groups)}"
        f'<table id="utts"><thead><tr>{heads}<th>reference / hypothesis</th><th>audio</th></tr></thead>'
        "<tbody></tbody></table>"
        f'<script type="application/json" id="report-data">{_json_for_script({"rows": rows})}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


def _manifest_from_run_config(eval_dir: Path) -> Any:
    config = eval_dir.parent / CONFIG_FILE
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8")) if config.is_file() else None
    except (OSError, yaml.YAMLError):
        return None
    return data.get("data") if isinstance(data, dict) else None


def write_report(row: Row, out: Path | None = None, embed_audio_max_bytes: int = 0) -> Path:
    """Write the report of ``row``'s evaluation (default: ``report.html`` in its folder)."""
    if row.eval_dir is None:
        raise ASRError(f"{row.label}: no evaluation folder to report on")
    path = out or row.eval_dir / REPORT_FILE
    write_text(path, render_page(row, path.parent, embed_audio_max_bytes))
    return path


def write_error_report(eval_dir: Path, embed_audio_max_bytes: int = 0) -> Path | None:
    """``report.html`` for an evaluation folder; never raises (a hook after scoring): logs and
    returns None when the report cannot be written."""
    try:
        row = eval_row(Path(eval_dir), data=_manifest_from_run_config(Path(eval_dir)))
        return write_report(row, embed_audio_max_bytes=embed_audio_max_bytes)
    except Exception as err:  # the evaluation's own results are written; the report is extra
        log.warning("%s: no error report (%s: %s)", eval_dir, type(err).__name__, err)
        return None


def write_run_reports(run_dir: Path) -> list[Path]:
    """``report.html`` in every evaluation folder of a fine-tuning run (each validation step,
    ``test/``, ``zero_shot/``); written by the caller once the run has finished."""
    run_dir = Path(run_dir)
    folders = [*sorted(run_dir.glob("validation/step-*")), run_dir / "test", run_dir / "zero_shot"]
    pages = [write_error_report(f) for f in folders if (f / "metrics.json").is_file()]
    return [page for page in pages if page is not None]
