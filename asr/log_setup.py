"""Logging for every command: one format, the HTTP client's wire logs kept quiet, secrets scrubbed.

Under ``-v`` (DEBUG) httpcore logs request and response headers; a mirror or proxy that reflects
the ``Authorization`` header would put the Hub token on stderr. Those loggers stay at INFO, and
a filter on the handlers masks anything that looks like a token in every record.

>>> scrub("headers [(b'Authorization', b'Bearer hf_abcdefghijklmnop')]")
"headers [(b'Authorization', b'Bearer ***')]"
>>> scrub("token=hf_abcdefghijklmnopqrstu rest")
'token=*** rest'
"""

from __future__ import annotations

import logging
import re

WIRE_LOGGERS = (
    "httpcore",
    "httpcore2",
    "httpx",
    "httpx2",
    "urllib3",
    "hpack",
    "h2",
)  # *2: huggingface_hub 2.x
_SECRETS = (
    re.compile(r"(?i)(bearer\s+)[^\s'\",)\]]+"),
    re.compile(
        r"(?i)((?:authorization|x-api-key|token)['\"]?\s*[:=,]\s*(?:b?['\"])?)(?!b?['\"]|bearer\s)[^\s'\",)\]]+"
    ),
    re.compile(r"\bhf_[A-Za-z0-9]{8,}"),
)


def scrub(text: str) -> str:
    """``text`` with bearer tokens, Authorization values and Hub tokens replaced by ``***``."""
    text = _SECRETS[0].sub(r"\1***", text)
    text = _SECRETS[1].sub(r"\1***", text)
    return _SECRETS[2].sub("***", text)


class ScrubSecrets(logging.Filter):
    """Rewrites each record's message with :func:`scrub` (arguments merged first)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def configure_logging(verbose: bool) -> None:
    """INFO (DEBUG with ``-v``) to stderr; wire loggers at INFO at most; secrets scrubbed."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubSecrets) for f in handler.filters):
            handler.addFilter(ScrubSecrets())
