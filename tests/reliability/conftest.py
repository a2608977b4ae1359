"""The fault matrix reuses the end-to-end fixtures: the prepared demo corpus, four of its clips and a
tiny Whisper."""

from tests.e2e.conftest import demo_data, few_clips, tiny_whisper  # noqa: F401  (pytest fixtures)
