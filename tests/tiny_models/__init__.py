"""Small randomly initialised models for tests (and offline demos), one module per family.

Each ``build_tiny(out_dir, texts, seed=...)`` writes a model directory in the family's real
layout, loadable with :func:`asr.models.load_model`. These live on the tests side because the
library ships no test-only code.
"""
