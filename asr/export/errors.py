"""Errors of ``asr export``: each names what was wrong and how to fix it (the CLI exits with 2)."""

from asr.errors import ASRError


class ExportError(ASRError):
    """A checkpoint that cannot be exported, or an output folder that cannot be written."""


class HubError(ASRError):
    """A Hugging Face Hub push failed (the message says whether anything was committed)."""


class HubCredentialsError(HubError):
    """No Hugging Face token was found, or the Hub rejected it."""


class InvalidRepoIdError(HubError):
    """``--push-to-hub`` names no valid ``user/name`` repository (checked before any network call)."""


class HubNetworkError(HubError):
    """The Hub (or ``HF_ENDPOINT``) could not be reached, or answered with a server error."""
