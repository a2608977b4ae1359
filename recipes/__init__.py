"""Runnable procedures behind the `asr` CLI and the Makefile."""
