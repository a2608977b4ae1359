"""The leaderboard as ``results.md``, ``results.csv`` and ``results.tex``.

Every row carries CER with its 95% CI, WER, SER, substitution/deletion/insertion rates (per
reference character), RTF, utterances, setting, the paired bootstrap against the baseline row,
the exact command, the git commit and the date; a skipped model is a row with its reason.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from asr.data.corpus_info import CorpusInfo
from asr.io import write_text
from asr.report.rows import Row

CSV_COLUMNS = (
    "model",
    "setting",
    "status",
    "cer",
    "cer_ci95_low",
    "cer_ci95_high",
    "wer",
    "ser",
    "sub_rate",
    "del_rate",
    "ins_rate",
    "rtf",
    "n_utterances",
    "delta_vs_baseline",
    "delta_ci95_low",
    "delta_ci95_high",
    "p_delta_ge_0",
    "note",
    "corpus",
    "command",
    "git_commit",
    "date",
)


def num(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return ""
    return f"{value:.{digits}f}"


def pair(values: Any, digits: int = 4, signed: bool = False) -> str:
    if not isinstance(values, (list, tuple)) or len(values) != 2 or not all(num(v) for v in values):
        return ""  # no interval (``--bootstrap 0``)
    fmt = f"{{:+.{digits}f}}" if signed else f"{{:.{digits}f}}"
    return "[" + ", ".join(fmt.format(v) for v in values) + "]"


def record(row: Row) -> dict[str, Any]:
    """The row's values by CSV column (numbers unrounded, blanks for what it lacks)."""
    m, sig = row.metrics, row.significance or {}
    ci = (m.cer_ci95 if m else None) or [None, None]
    dci = sig.get("delta_ci95") or [None, None]
    note = "; ".join(x for x in (row.reason, row.note, sig.get("note", "")) if x)
    return {
        "model": row.model,
        "setting": row.setting,
        "status": row.status,
        "cer": m.cer if m else None,
        "cer_ci95_low": ci[0],
        "cer_ci95_high": ci[1],
        "wer": m.wer if m else None,
        "ser": m.ser if m else None,
        "sub_rate": row.rate("substitutions"),
        "del_rate": row.rate("deletions"),
        "ins_rate": row.rate("insertions"),
        "rtf": m.rtf if m else None,
        "n_utterances": m.n_utterances if m else None,
        "delta_vs_baseline": sig.get("delta"),
        "delta_ci95_low": dci[0],
        "delta_ci95_high": dci[1],
        "p_delta_ge_0": sig.get("p_delta_ge_0"),
        "note": note,
        "corpus": row.corpus.headline(),
        "command": row.command or "",
        "git_commit": row.commit or "",
        "date": row.date or "",
    }


def to_csv(rows: list[Row]) -> str:
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in record(row).items()})
    return buf.getvalue()


MD_HEADER = (
    "model",
    "setting",
    "CER",
    "95% CI",
    "WER",
    "SER",
    "S/D/I rate",
    "RTF",
    "utts",
    "Δ CER vs baseline [95% CI], p(Δ≥0)",
    "command",
    "commit, date",
)


def md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _significance_text(r: dict[str, Any], row: Row) -> str:
    if r["delta_vs_baseline"] is None:
        return (row.significance or {}).get("note", "")
    ci = pair([r["delta_ci95_low"], r["delta_ci95_high"]], signed=True)
    if not ci:  # --bootstrap 0: the difference alone
        return f"{r['delta_vs_baseline']:+.4f}"
    return f"{r['delta_vs_baseline']:+.4f} {ci}, p={num(r['p_delta_ge_0'], 3)}"


def md_line(row: Row) -> str:
    r = record(row)
    command = f"`{r['command']}`" if r["command"] else ""
    stamp = ", ".join(x for x in (row.short_commit, r["date"][:10]) if x)
    if not row.ok:
        cells = [row.model, row.setting, f"{row.status}: {row.reason}", *[""] * 7, command, stamp]
    else:
        rates = "/".join(num(r[k], 3) for k in ("sub_rate", "del_rate", "ins_rate"))
        cells = [
            row.model,
            row.setting + (f" ({row.note})" if row.note else ""),
            num(r["cer"]),
            pair([r["cer_ci95_low"], r["cer_ci95_high"]]) if r["cer_ci95_low"] is not None else "",
            num(r["wer"]),
            num(r["ser"]),
            rates,
            num(r["rtf"], 3),
            r["n_utterances"],
            _significance_text(r, row),
            command,
            stamp,
        ]
    return "| " + " | ".join(md_cell(c) for c in cells) + " |"


UNREACHABLE = "weights not found"  # the reason asr.report.stages gives a model whose weights it cannot fetch


def split_unreachable(rows: list[Row]) -> tuple[list[Row], str]:
    """(rows to show, one note line) where every model skipped for unreachable weights collapses into
    ``not run here: names (setting) — weights not reachable``; other skip reasons keep their row.

    >>> from asr.report.rows import Row
    >>> shown, note = split_unreachable([Row("a", "zero-shot", status="skipped", reason="weights not found: x")])
    >>> shown, note
    ([], 'Not run here (weights not reachable from this machine: no Hub/ModelScope access): a (zero-shot).')
    """
    gone = [r for r in rows if not r.ok and r.reason.startswith(UNREACHABLE)]
    if not gone:
        return rows, ""
    by_setting: dict[str, list[str]] = {}
    for row in gone:
        by_setting.setdefault(row.setting, []).append(row.model)
    names = "; ".join(f"{', '.join(models)} ({setting})" for setting, models in by_setting.items())
    note = f"Not run here (weights not reachable from this machine: no Hub/ModelScope access): {names}."
    return [r for r in rows if r not in gone], note


def corpus_lines(rows: list[Row]) -> list[str]:
    """One line per distinct corpus the rows were measured on."""
    seen: dict[str, CorpusInfo] = {}
    for row in rows:
        if row.ok:
            seen.setdefault(row.corpus.headline(), row.corpus)
    return [f"Data: {text}." for text in seen] or ["Data: no results."]


def to_markdown(rows: list[Row], baseline: Row | None, title: str = "Results") -> str:
    lines = [f"# {title}", "", *corpus_lines(rows), ""]
    if baseline is not None:
        lines += [f"Baseline of the paired bootstrap: {baseline.label}.", ""]
    shown, note = split_unreachable(rows)
    lines += ["| " + " | ".join(MD_HEADER) + " |", "|" + "---|" * len(MD_HEADER)]
    lines += [md_line(row) for row in shown]
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


_TEX_ESCAPES = {c: "\\" + c for c in "&%$#_{}"} | {
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "\\": r"\textbackslash{}",
}


def tex_escape(text: Any) -> str:
    r"""LaTeX-safe text.

    >>> tex_escape("a_b & 50%")
    'a\\_b \\& 50\\%'
    """
    return "".join(_TEX_ESCAPES.get(c, c) for c in str(text))


def to_tex(rows: list[Row]) -> str:
    """A booktabs table (CER as a percentage), the commands listed after it."""
    lines = [
        r"\begin{tabular}{llrrrrrrr}",
        r"\toprule",
        r"Model & Setting & CER (\%) & 95\% CI & WER (\%) & SER (\%) & RTF & Utts & $\Delta$ CER \\",
        r"\midrule",
    ]
    for row in rows:
        r = record(row)
        if not row.ok:
            lines.append(
                f"{tex_escape(row.model)} & {tex_escape(row.setting)} & "
                rf"\multicolumn{{7}}{{l}}{{{row.status}: {tex_escape(row.reason[:60])}}} \\"
            )
            continue
        pct = lambda v: num(100 * v, 2) if v is not None else ""  # noqa: E731
        ci = f"[{pct(r['cer_ci95_low'])}, {pct(r['cer_ci95_high'])}]" if r["cer_ci95_low"] is not None else ""
        delta = f"{100 * r['delta_vs_baseline']:+.2f}" if r["delta_vs_baseline"] is not None else ""
        cells = [row.model, row.setting, pct(r["cer"]), ci, pct(r["wer"]), pct(r["ser"]),
                 num(r["rtf"], 3), r["n_utterances"], delta]  # fmt: skip
        lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    items = [
        rf"\item {tex_escape(row.label)}: \texttt{{{tex_escape(row.command)}}}" for row in rows if row.command
    ]
    if items:
        lines += ["", r"\begin{itemize}", *items, r"\end{itemize}"]
    return "\n".join(lines) + "\n"


def write_tables(rows: list[Row], baseline: Row | None, out: Path) -> list[Path]:
    """``results.md``, ``results.csv``, ``results.tex`` in ``out``."""
    paths = [out / "results.md", out / "results.csv", out / "results.tex"]
    for path, text in zip(paths, (to_markdown(rows, baseline), to_csv(rows), to_tex(rows)), strict=True):
        write_text(path, text)
    return paths
