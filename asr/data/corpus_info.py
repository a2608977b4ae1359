"""What corpus a run used, from the prepared data's own record (``reports/data_validation.json``).

``asr prepare`` writes that record beside the manifests; a run finds it through its manifest
(``DATA/manifests/test.jsonl``) or its config's ``data`` folder. Cards, reports and summaries
name the corpus from it, with its split sizes and protocol, and say plainly when it is not CS-Mage.

>>> info = CorpusInfo(kind="demo", name=DEMO_NAME, layout="csmage", protocol="v2",
...                   split_source="recomputed", counts={"train": 80, "validation": 20, "test": 20})
>>> info.headline()
'cs-mage-asr demo corpus (synthetic espeak-ng speech, not CS-Mage): train 80 / validation 20 / test 20 clips, protocol v2 (recomputed from clip durations)'
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

DATA_RECORD = Path("reports") / "data_validation.json"
CSMAGE_NAME = "CS-Mage"
DEMO_NAME = "cs-mage-asr demo corpus"
DEMO_GENERATOR = "tools/make_demo.py"
OLD_DEMO_GENERATORS = ("recipes/make_demo.py",)  # demo corpora written before the generator moved
CSMAGE_MIN_CLIPS = 1000  # the distribution has 1,085 clips; a prepared copy may leave out a few suspects
SPLIT_NAMES = ("train", "validation", "test")
SOURCES = {
    "recomputed": "recomputed from clip durations",
    "split_files": "from the official split files",
    "random": "random",
}


@dataclass
class CorpusInfo:
    """The corpus behind a run; ``kind`` is ``cs-mage``, ``demo``, ``other`` or ``unknown``."""

    kind: str
    name: str
    layout: str | None = None
    protocol: str | None = None
    split_source: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    hours: dict[str, float] = field(default_factory=dict)
    data_dir: str | None = None
    data_root: str | None = None

    @property
    def is_csmage(self) -> bool:
        return self.kind == "cs-mage"

    @property
    def known(self) -> bool:
        return self.kind != "unknown"

    def label(self) -> str:
        """The name, with what it is when it is not CS-Mage."""
        if self.kind == "demo":
            return f"{self.name} (synthetic espeak-ng speech, not CS-Mage)"
        if self.kind == "other":
            return f"{self.name} (not CS-Mage)"
        if self.kind == "unknown":
            return f"{self.name} (no record of the prepared data was found)"
        return self.name

    def splits_text(self) -> str:
        parts = [f"{s} {self.counts[s]}" for s in SPLIT_NAMES if s in self.counts]
        return " / ".join(parts) + " clips" if parts else "split sizes not recorded"

    def protocol_text(self) -> str:
        if not self.protocol:
            return "split protocol not recorded"
        source = SOURCES.get(self.split_source or "", self.split_source)
        return f"protocol {self.protocol}" + (f" ({source})" if source and source != self.protocol else "")

    def headline(self) -> str:
        """One line: name, split sizes, protocol."""
        if not self.known:
            return self.label()
        return f"{self.label()}: {self.splits_text()}, {self.protocol_text()}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CorpusInfo:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


UNKNOWN = CorpusInfo(kind="unknown", name="corpus not recorded")


def _is_demo(data_root: Path) -> bool:
    """The bundled demo: its folder sits beside ``manifest.json`` written by ``tools/make_demo.py``."""
    manifest = data_root.parent / "manifest.json"
    try:
        info = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("generator") in (DEMO_GENERATOR, *OLD_DEMO_GENERATORS)


def identify(report: dict[str, Any], data_dir: Path | None = None) -> CorpusInfo:
    """Name the corpus a ``data_validation.json`` describes."""
    root = Path(str(report.get("data_root") or ""))
    layout = report.get("layout")
    counts = {k: v for k, v in (report.get("counts") or {}).items() if isinstance(v, int)}
    named = report.get("corpus")  # a preparer that knows its corpus may say so
    if isinstance(named, str) and named:
        kind, name = ("cs-mage" if named == CSMAGE_NAME else "other"), named
    elif report.get("data_root") and _is_demo(root):
        kind, name = "demo", DEMO_NAME
    elif layout == "csmage" and counts.get("all", 0) >= CSMAGE_MIN_CLIPS:
        kind, name = "cs-mage", CSMAGE_NAME
    else:
        kind, name = (
            "other",
            f"{layout or 'unknown'}-layout corpus from {root.name or 'an unrecorded folder'}",
        )
    provenance = report.get("split_provenance") or {}
    return CorpusInfo(
        kind=kind,
        name=name,
        layout=layout,
        protocol=report.get("protocol"),
        split_source=provenance.get("source") if isinstance(provenance, dict) else None,
        counts=counts,
        hours={k: v for k, v in (report.get("hours") or {}).items() if isinstance(v, (int, float))},
        data_dir=str(data_dir) if data_dir else None,
        data_root=str(root) if report.get("data_root") else None,
    )


def read_corpus(data_dir: Path | str | None) -> CorpusInfo | None:
    """The corpus record of a prepared folder (``asr prepare --out``), or None when there is none."""
    if data_dir is None:
        return None
    path = Path(data_dir) / DATA_RECORD
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return identify(report, Path(data_dir)) if isinstance(report, dict) else None


def data_dir_of_manifest(manifest: Path | str | None) -> Path | None:
    """``DATA`` for ``DATA/manifests/<split>.jsonl`` (the layout ``asr prepare`` writes)."""
    if not manifest:
        return None
    path = Path(manifest)
    return path.parent.parent if path.parent.name == "manifests" else None


def find_corpus(*, data: Any = None, manifest: Any = None, base: Path | None = None) -> CorpusInfo:
    """The corpus from a config's ``data`` folder or a manifest path (relative paths tried from
    the current folder, then from ``base``); :data:`UNKNOWN` when neither leads to a record."""
    candidates = [Path(str(data))] if data else []
    manifest_dir = data_dir_of_manifest(manifest)
    if manifest_dir is not None:
        candidates.append(manifest_dir)
    for candidate in candidates:
        tries = [candidate] if candidate.is_absolute() or base is None else [candidate, base / candidate]
        for path in tries:
            info = read_corpus(path)
            if info is not None:
                return info
    return UNKNOWN


def corpus_summary(data_dir: Path | str | None) -> dict[str, Any] | None:
    """The corpus as a JSON object for a summary or record (``None`` without a record)."""
    info = read_corpus(data_dir)
    return None if info is None else {**info.to_json(), "headline": info.headline()}
