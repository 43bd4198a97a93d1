"""Keep secrets out of every line the builder writes.

`Redactor` knows the secrets of the current request and replaces them wherever they
appear; `install_log_redaction()` puts it in front of every logging handler so that
nothing reaches stdout (and so CloudWatch) unredacted.
"""
from __future__ import annotations

import logging
import re

MASK = "***"
# Credentials that may sit in URLs (https://user:secret@host/...).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@")


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 4:
            self._secrets.add(secret)

    def clear(self) -> None:
        self._secrets.clear()

    def __call__(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", text)


REDACTOR = Redactor()


class RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redactor(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redactor(logging.Formatter().formatException(record.exc_info))
        return True


def install_log_redaction(redactor: Redactor = REDACTOR) -> None:
    """Attach the redacting filter to every handler of the root logger (idempotent)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter(redactor))
