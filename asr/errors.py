"""User-facing errors: the CLI prints their message and exits with status 2."""


class ASRError(Exception):
    """A problem with the user's input or environment, explained in one message."""


class DataError(ASRError):
    """Bad or missing corpus data (names the file and the problem)."""


class ConfigError(ASRError):
    """Unknown or invalid configuration key or value."""


class ModelSourceError(ASRError):
    """A model could not be found or downloaded."""


class TrainingError(ASRError):
    """The training run cannot go on (non-finite training, an unwritable checkpoint, bad best weights)."""
