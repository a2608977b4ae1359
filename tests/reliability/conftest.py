"""The fault matrix reuses the end-to-end fixtures: the prepared demo corpus and a tiny Whisper."""

from tests.e2e.conftest import demo_data, tiny_whisper  # noqa: F401  (pytest fixtures)
