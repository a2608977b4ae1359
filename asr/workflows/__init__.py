"""Workflows that run other layers end to end (above :mod:`asr.report`, below the CLI).

- :mod:`asr.workflows.zero_shot`: one model evaluated zero-shot on a manifest, resumably
  (``asr zero-shot``, the benchmark's zero-shot stage);
- :mod:`asr.workflows.benchmark`: the ``asr benchmark`` orchestrator (zero-shot and fine-tuning
  stages; the caller writes the report from their folders).
"""
