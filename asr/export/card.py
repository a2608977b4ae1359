"""The model card (``README.md`` with Hub metadata) of an export, built from the run's records.

A fine-tuning run leaves ``config.yaml``, ``train_log.jsonl``, ``training_curve.png``,
``metrics_test.json`` and ``summary.json`` next to ``best/``. :class:`RunRecords` holds
whichever exist (read by :class:`asr.run_dir.RunDir`); each card section says "not available"
for what is missing. The metadata is built with huggingface_hub's ``ModelCardData``/``EvalResult``;
the test CER goes into ``model-index`` as a percentage (metric type ``cer``, name ``Test CER (%)``).

>>> records = RunRecords.load(Path("runs/whisper-base-lora"))  # doctest: +SKIP
>>> card = build_card(CardInfo(spec=get_spec("whisper-base"), mode="merged", lora=True), records)  # doctest: +SKIP
>>> card.save("runs/whisper-base-lora/export/README.md")  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr import __version__
from asr.data.corpus_info import UNKNOWN, CorpusInfo, find_corpus
from asr.export import cards
from asr.export.card_corpus import (
    V2_PROTOCOL,
    data_limitation,
    data_terms,
    small_test_split,
    trained_on,
    training_data_section,
    uses_csmage,
)
from asr.models.registry import family_class
from asr.models.spec import ModelSpec
from asr.run_dir import CONFIG_FILE, CURVE_FILE, SUMMARY_FILE, TEST_METRICS_FILE, RunDir
from asr.run_records import CorpusMetrics, EvalRecord, FinetuneSummary

log = logging.getLogger(__name__)

NOT_AVAILABLE = "not available"
DATASET_ID = "CS-Mage"
V2_TEST_SIZE = 165
NORMALIZATION = "CS-Mage normalization"
RUN_FILES = (CONFIG_FILE, TEST_METRICS_FILE, SUMMARY_FILE)  # copied to the export's run/ folder


# --- run records ---------------------------------------------------------------------------------


@dataclass
class RunRecords:
    """What a fine-tuning run left behind; ``None``/empty for files that are missing or unusable.

    ``metrics`` is ``metrics_test.json``, ``summary`` is ``summary.json`` (read through their
    record classes); an unreadable or invalid file is left out with a warning and a ``problems`` entry.
    """

    run_dir: Path | None = None
    metrics: EvalRecord | None = None
    summary: FinetuneSummary | None = None
    config: dict[str, Any] | None = None
    train_log: list[dict[str, Any]] = field(default_factory=list)
    curve: Path | None = None
    problems: list[str] = field(default_factory=list)
    corpus: CorpusInfo = field(default_factory=lambda: UNKNOWN)

    @classmethod
    def load(cls, run_dir: Path | None) -> RunRecords:
        records = cls(run_dir=run_dir)
        if run_dir is None or not run_dir.is_dir():
            return records
        run = RunDir(run_dir, skip_unreadable_for="the model card")
        records.metrics, records.summary, records.config = run.test_metrics, run.summary, run.config
        records.train_log, records.curve, records.problems = run.train_log, run.curve, run.problems
        records.corpus = records._corpus()
        return records

    def _corpus(self) -> CorpusInfo:
        """The corpus: summary.json's record of it, else the prepared data the run points at."""
        recorded = self.summary.corpus if self.summary else None
        if isinstance(recorded, dict) and recorded.get("kind"):
            return CorpusInfo.from_json(recorded)
        config = self.summary.config if self.summary else self.config
        data = config.get("data") if isinstance(config, dict) else None
        manifest = self.metrics.manifest if self.metrics else None
        return find_corpus(data=data, manifest=manifest)

    # --- views -----------------------------------------------------------------------------------
    @property
    def test_metrics(self) -> CorpusMetrics | None:
        """The test split's corpus numbers (``metrics_test.json``)."""
        return self.metrics.metrics if self.metrics else None

    @property
    def zero_shot(self) -> dict[str, Any] | None:
        return self.summary.test.zero_shot if self.summary else None

    @property
    def finetuned(self) -> dict[str, Any] | None:
        if self.summary and isinstance(self.summary.test.fine_tuned, dict):
            return self.summary.test.fine_tuned
        return self.test_metrics.headline() if self.test_metrics else None

    @property
    def comparison(self) -> dict[str, Any] | None:
        """The paired bootstrap of fine-tuned against zero-shot on the test split."""
        return self.summary.test.comparison if self.summary else None

    @property
    def command(self) -> str | None:
        provenance = self.summary.provenance if self.summary else None
        value = provenance.get("command") if isinstance(provenance, dict) else None
        return value.strip() if isinstance(value, str) and value.strip() else None

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The run's config (summary.json's, else config.yaml) flattened, plus resolved training numbers."""
        summary = self.summary
        config = summary.config if summary and isinstance(summary.config, dict) else self.config
        params = _flatten(config or {})
        if summary:
            for key in ("learning_rate", "effective_batch_size", "precision", "max_steps", "global_step"):
                params.setdefault(key, getattr(summary, key))
        return params

    def validation_points(self) -> list[tuple[int, float]]:
        points = []
        for row in self.train_log:
            value, step = row.get("eval_cer"), row.get("step")
            if isinstance(step, int) and _number(value) is not None:
                points.append((step, float(value)))
        return points


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)) and len(value) > 8:
            flat[name] = f"[{len(value)} items]"
        else:
            flat[name] = value
    return flat


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def pct(value: Any, digits: int = 2) -> str:
    """A CER fraction as a percentage: ``0.1234`` -> ``12.34%``."""
    number = _number(value)
    return NOT_AVAILABLE if number is None else f"{100 * number:.{digits}f}%"


def ci_pct(ci: Any) -> str:
    if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(v) is not None for v in ci):
        return f"[{100 * ci[0]:.2f}, {100 * ci[1]:.2f}]"
    return NOT_AVAILABLE


# --- metadata ------------------------------------------------------------------------------------


@dataclass
class CardInfo:
    """What the card describes: the model, how it was exported, where it will live."""

    spec: ModelSpec
    mode: str = "merged"  # merged | adapter
    lora: bool = False
    repo_id: str | None = None
    adapter_base: str | None = None
    ct2_quantization: str | None = None
    export_command: str | None = None

    @property
    def model_name(self) -> str:
        if self.repo_id:
            return self.repo_id.split("/")[-1]
        return f"{self.spec.name}-cs-mage"


def protocol(metrics: CorpusMetrics | dict[str, Any], corpus: CorpusInfo = UNKNOWN) -> tuple[str, bool]:
    """``(label, is_v2)``: the split and normalization the test CER was measured with."""
    data = metrics.to_json() if isinstance(metrics, CorpusMetrics) else metrics
    norm = data.get("normalization")
    extras = [k for k, v in norm.items() if v] if isinstance(norm, dict) else []
    normalization = NORMALIZATION + (f" + {', '.join(extras)}" if extras else "")
    n = data.get("n_utterances")
    if not uses_csmage(corpus):
        size = f"{n} utterances" if isinstance(n, int) else "unknown size"
        return f"{corpus.label()}, test split of {size}, {corpus.protocol_text()}, {normalization}", False
    if n == V2_TEST_SIZE and corpus.protocol in (None, "v2"):
        return f"{V2_PROTOCOL}, {normalization}", True
    size = f"{n} utterances" if isinstance(n, int) else "unknown size"
    return f"CS-Mage test split of {size} (not the {V2_TEST_SIZE}-clip v2 test split), {normalization}", False


def card_data(info: CardInfo, records: RunRecords) -> Any:
    """Hub metadata (``ModelCardData``) for the card's YAML header."""
    # seconds to import; only the card needs huggingface_hub's card classes
    from huggingface_hub import EvalResult, ModelCardData

    spec = info.spec
    family = family_class(spec.family)
    tags = ["automatic-speech-recognition", family.card_tag]
    if info.lora:
        tags.append("lora")
    tags += ["cs-mage-asr", "changsha-dialect", "xiang", "chinese-dialect"]
    if info.ct2_quantization:
        tags.append("ctranslate2")
    eval_results = None
    metrics = records.test_metrics
    cer = _number(metrics.cer) if metrics else None
    csmage = uses_csmage(records.corpus)
    if metrics and cer is not None:
        label, _ = protocol(metrics, records.corpus)
        eval_results = [
            EvalResult(
                task_type="automatic-speech-recognition",
                task_name="Automatic Speech Recognition",
                dataset_type=DATASET_ID if csmage else records.corpus.name,
                dataset_name=f"CS-Mage (Changsha dialect), {label}" if csmage else label,
                dataset_config=label,
                dataset_split="test",
                metric_type="cer",
                metric_name="Test CER (%)",
                metric_value=round(100 * cer, 2),
                metric_config=NORMALIZATION,
            )
        ]
    return ModelCardData(
        language=["zh"],
        license=spec.license.id,
        license_name=spec.license.name,
        license_link=spec.license.link,
        base_model=spec.hub_id or None,
        datasets=[DATASET_ID] if csmage else None,
        tags=tags,
        library_name=family.card_library(info.mode == "adapter"),
        pipeline_tag="automatic-speech-recognition",
        metrics=["cer"],
        model_name=info.model_name if eval_results else None,  # only model-index uses it
        eval_results=eval_results,
    )


# --- prose ---------------------------------------------------------------------------------------


def _table(header: tuple[str, ...], rows: list[tuple[Any, ...]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _results_section(records: RunRecords) -> str:
    metrics = records.test_metrics
    if not metrics or _number(metrics.cer) is None:
        return "## Results\n\nTest metrics: not available (no metrics_test.json in the run folder).\n\n" + (
            _comparison_section(records)
        )
    label, is_v2 = protocol(metrics, records.corpus)
    rows = [
        ("CER", pct(metrics.cer)),
        ("CER 95% CI (bootstrap)", ci_pct(metrics.cer_ci95)),
        (
            "substitutions / deletions / insertions",
            f"{metrics.substitutions}/{metrics.deletions}/{metrics.insertions}",
        ),
        ("SER", pct(metrics.ser)),
        ("WER (jieba words)", pct(metrics.wer)),
        ("utterances", metrics.n_utterances),
    ]
    text = [
        "## Results",
        "",
        f"Test split: **{label}**. CER is corpus-level (total edits / total reference characters) after "
        "the CS-Mage normalization; the model-index metric is the same CER as a percentage.",
        "",
        _table(("metric", "value"), rows),
        "",
    ]
    if not is_v2:
        what = "split" if uses_csmage(records.corpus) else "split of CS-Mage"
        text += [
            f"This is not the official 165-clip v2 test {what}, so it is not comparable to published results.",
            "",
        ]
    decoding = records.metrics.decoding if records.metrics else None
    if isinstance(decoding, dict):
        text += [f"Decoding: `{json.dumps(decoding, ensure_ascii=False, sort_keys=True)}`", ""]
    text.append(_comparison_section(records))
    return "\n".join(text)


def _comparison_section(records: RunRecords) -> str:
    zero, tuned, paired = records.zero_shot, records.finetuned, records.comparison
    lines = ["### Zero-shot vs fine-tuned", ""]
    if not zero:
        return "\n".join(
            [*lines, "Zero-shot comparison: not available (no summary.json with a zero-shot block).", ""]
        )
    rows = [
        ("zero-shot (base model)", pct(zero.get("cer")), ci_pct(zero.get("cer_ci95"))),
        ("fine-tuned (this model)", pct((tuned or {}).get("cer")), ci_pct((tuned or {}).get("cer_ci95"))),
    ]
    lines += [_table(("system", "test CER", "95% CI"), rows), ""]
    if paired and _number(paired.get("delta")) is not None:
        delta = 100 * float(paired["delta"])
        ci = paired.get("delta_ci95")
        ci_text = (
            f"[{100 * ci[0]:+.2f}, {100 * ci[1]:+.2f}] points"
            if isinstance(ci, (list, tuple)) and len(ci) == 2 and all(_number(v) is not None for v in ci)
            else NOT_AVAILABLE
        )
        p = paired.get("p_delta_ge_0")
        lines += [
            f"Paired bootstrap over the same test utterances ({paired.get('n_bootstrap', '?')} resamples): "
            f"CER change (fine-tuned − zero-shot) **{delta:+.2f} points**, 95% CI {ci_text}; "
            f"fraction of resamples where fine-tuning did not help (Δ ≥ 0): "
            f"{p if _number(p) is not None else NOT_AVAILABLE}.",
            "",
        ]
    else:
        lines += ["Paired bootstrap: not available.", ""]
    return "\n".join(lines)


def _training_section(info: CardInfo, records: RunRecords, has_curve: bool) -> str:
    summary = records.summary
    method = (summary.method if summary else None) or ("lora" if info.lora else NOT_AVAILABLE)
    lines = [
        "## Training",
        "",
        f"Base model: `{info.spec.hub_id or info.spec.name}`; method: **{method}**"
        + (" (LoRA merged into the weights)" if info.lora and info.mode == "merged" else "")
        + ".",
        "",
    ]
    facts = []
    if summary:
        facts = [
            ("training utterances", summary.train_utterances),
            ("training hours", summary.train_hours),
            ("validation utterances", summary.validation_utterances),
            ("best step", summary.best_step),
            ("best validation CER", pct(summary.best_validation_cer)),
            ("trainable / total parameters", _params(summary)),
        ]
        facts = [(k, v) for k, v in facts if v is not None]
    if facts:
        lines += [_table(("", "value"), facts), ""]
    command = records.command
    lines += ["Command:", "", f"```bash\n{command}\n```" if command else f"{NOT_AVAILABLE}.", ""]
    params = records.hyperparameters
    lines += ["### Hyperparameters", ""]
    if params:
        rows = [
            (f"`{k}`", f"`{json.dumps(v, ensure_ascii=False, default=str)}`")
            for k, v in sorted(params.items())
        ]
        lines += [_table(("name", "value"), rows), ""]
    else:
        lines += [f"Hyperparameters: {NOT_AVAILABLE} (no summary.json or config.yaml).", ""]
    lines += ["### Validation curve", ""]
    if has_curve:
        lines += [f"![training loss and validation CER]({CURVE_FILE})", ""]
    points = records.validation_points()
    if points:
        step = max(1, math.ceil(len(points) / 12))
        shown = points[::step] if points[-1] in points[::step] else [*points[::step], points[-1]]
        lines += [_table(("step", "validation CER"), [(s, pct(v)) for s, v in shown]), ""]
    if not has_curve and not points:
        lines += [f"Validation curve: {NOT_AVAILABLE}.", ""]
    return "\n".join(lines)


def _params(summary: FinetuneSummary) -> str | None:
    t, n = summary.trainable_parameters, summary.total_parameters
    if isinstance(t, int) and isinstance(n, int) and n:
        return f"{t:,} / {n:,} ({100 * t / n:.2f}%)"
    return None


def _usage_section(info: CardInfo) -> str:
    model_id = info.repo_id or "path/to/export"
    family = family_class(info.spec.family)
    lines = ["## How to use", ""]
    if info.mode == "adapter":
        cls = family.peft_base_class or "AutoModel"
        lines += [
            f"This repository holds a LoRA adapter for `{info.adapter_base}`:",
            "",
            *cards.python_block(
                "from peft import PeftModel",
                f"from transformers import {cls}",
                "",
                f'base = {cls}.from_pretrained("{info.adapter_base}")',
                f'model = PeftModel.from_pretrained(base, "{model_id}").merge_and_unload()',
            ),
        ]
    lines += cards.usage(info.spec.family, model_id, info.ct2_quantization)
    lines += [
        "The reported CER was measured with cs-mage-asr (`asr evaluate --model <this folder>`), which also "
        "applies a hallucination guard (a token cap per second of audio and a repetition stop); "
        "a plain pipeline does not.",
        "",
    ]
    return "\n".join(lines)


def _limitations(family: str, corpus: CorpusInfo) -> str:
    lines = [
        "## Limitations",
        "",
        data_limitation(corpus),
        "- Dialect words may lack a standard written form; the corpus's character choices define what "
        "counts as correct, so CER partly measures agreement with its orthography.",
        small_test_split(corpus),
        *cards.limitations(family),
        "- Not evaluated for fairness across speakers, ages or genders; not for high-stakes use.",
        "",
    ]
    return "\n".join(lines)


def build_card(info: CardInfo, records: RunRecords, *, has_curve: bool | None = None) -> Any:
    """The full card (``huggingface_hub.ModelCard``): YAML metadata plus prose."""
    from huggingface_hub import ModelCard  # slow to import, as above

    has_curve = records.curve is not None if has_curve is None else has_curve
    data = card_data(info, records)
    spec = info.spec
    what = "LoRA adapter" if info.mode == "adapter" else "model"
    intro = [
        f"# {info.model_name}",
        "",
        f"A speech recognition {what} for the **Changsha dialect** (长沙话, Xiang Chinese), fine-tuned from "
        f"`{spec.hub_id or spec.name}` on {trained_on(records.corpus)} with the cs-mage-asr toolkit.",
        "",
        "## Training data",
        "",
        *training_data_section(records.corpus),
    ]
    problems = [f"- {p}" for p in records.problems]
    run_dir = records.run_dir
    included = [n for n in RUN_FILES if run_dir is not None and (run_dir / n).is_file()]
    body = [
        *intro,
        _results_section(records),
        _training_section(info, records, has_curve),
        _usage_section(info),
        _limitations(spec.family, records.corpus),
        "## License and terms",
        "",
        f"Weights: the base model's license (`{data.license}`"
        + (f", {data.license_link}" if data.license_link else "")
        + "). Data terms: "
        + data_terms(records.corpus),
        "",
        "## Provenance",
        "",
        f"Exported with cs-mage-asr {__version__}"
        + (f": `{info.export_command}`" if info.export_command else "")
        + ". Run records included under `run/`: "
        + (", ".join(included) if included else "none")
        + ".",
        "",
        *(["Left out of this card:", "", *problems, ""] if problems else []),
    ]
    content = f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(body)
    return ModelCard(content)
