"""Reports over finished runs: the leaderboard table, significance, plots, the HTML error report.

What corpus a run used comes from :mod:`asr.data.corpus_info`; the ``asr benchmark`` orchestrator
lives in :mod:`asr.workflows.benchmark`.

- :mod:`asr.report.rows`: one row per evaluation, read from run folders through :mod:`asr.run_records`;
- :mod:`asr.report.table`: ``results.md``, ``results.csv``, ``results.tex``;
- :mod:`asr.report.significance`: paired bootstrap of every row against a baseline row;
- :mod:`asr.report.plots`: CER bars, duration and speaker buckets, training curves (PNG and SVG);
- :mod:`asr.report.html`: the self-contained per-utterance error report (``report.html``);
- :mod:`asr.report.readme`: the README's generated results section.
"""
