"""Export: a fine-tuning checkpoint as a folder plain transformers (or funasr) loads, with a model card.

Family-specific files, card text and licences come from the model family
(:class:`asr.models.base.ASRModel`) and its registry entry; nothing here names a family.

- :mod:`asr.export.merge`: checkpoint checks, LoRA merge (``export_merged``), adapter-only copy.
- :mod:`asr.export.card`: ``README.md`` with Hub metadata from the run's records.
- :mod:`asr.hub` (shared with dataset pushes): repo-id/token checks, dry-run plan, one-commit push.
- :mod:`asr.export.ct2`: CTranslate2 copy through the family's conversion (faster-whisper).
- :mod:`asr.export.run`: all of it behind ``asr export`` (``export(ExportOptions(...))``).
"""
