"""Export: a fine-tuning checkpoint as a folder plain transformers (or funasr) loads, with a model card.

Family-specific files and licences come from the model family
(:class:`asr.models.base.ASRModel`) and its registry entry; card text from the family's
template in :mod:`asr.export.cards`, picked by family name.

- :mod:`asr.export.merge`: checkpoint checks, LoRA merge (``export_merged``), adapter-only copy.
- :mod:`asr.export.card`: ``README.md`` with Hub metadata from the run's records.
- :mod:`asr.export.cards`: per-family usage and limitation text for the card.
- :mod:`asr.hub` (shared with dataset pushes): repo-id/token checks, dry-run plan, one-commit push.
- :mod:`asr.export.ct2`: CTranslate2 copy through the family's conversion (faster-whisper).
- :mod:`asr.export.run`: all of it behind ``asr export`` (``export(ExportOptions(...))``).
"""
