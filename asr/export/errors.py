"""Errors of ``asr export``: each names what was wrong and how to fix it (the CLI exits with 2).

Hub push errors live with the Hub helpers in :mod:`asr.hub`.
"""

from asr.errors import ASRError


class ExportError(ASRError):
    """A checkpoint that cannot be exported, or an output folder that cannot be written."""
