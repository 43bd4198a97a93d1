"""Keep secrets out of every line the builder writes.

`Redactor` knows the secrets of the current request and replaces them wherever they
appear, in each form they travel in: as is, URL-encoded, base64 alone and base64 of the
HTTP basic-auth pair `<username>:<secret>`. `register_own_credentials` adds the builder's
own AWS credentials; `install_log_redaction()` puts the redactor in front of every logging
handler so that nothing reaches stdout (and so CloudWatch) unredacted. Every pass over a
text is linear in its length.
"""
from __future__ import annotations

import base64
import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
# The username the builder sends a token with (GitHub's convention for tokens over HTTPS).
BASIC_AUTH_USERNAMES = ("x-access-token",)
# The builder's own credentials, as the Lambda and container runtimes set them.
OWN_CREDENTIALS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID",
                   "AWS_CONTAINER_AUTHORIZATION_TOKEN")
# The credentials part of a URL (https://user:secret@host/...). Anchored at "://": neither
# part can cross a "/", so every attempt stops at the next "/" and the scan is linear.
_URL_CREDENTIALS = re.compile(r"://[^/@\s:]+:[^/@\s]+@")


def encoded_forms(secret: str, usernames: Iterable[str] = ()) -> set[str]:
    """`secret` and the encodings it may appear in: URL-encoded, base64 (also without the
    padding, as it sits inside longer base64) and base64 of `<username>:<secret>`."""
    forms = {secret, quote(secret, safe=""), quote(secret), quote_plus(secret)}
    for raw in [secret, *(f"{user}:{secret}" for user in (*BASIC_AUTH_USERNAMES, *usernames))]:
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(raw.encode("utf-8")).decode("ascii")
            forms.update((text, text.rstrip("=")))
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._ordered: list[str] = []

    def add(self, secret: str | None, *, username: str | None = None) -> None:
        """Redact `secret` in every encoded form; `username` is the one it is sent with
        in basic auth when that is not the builder's own (a URL's user)."""
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            return
        self._secrets.update(encoded_forms(secret, [username] if username else []))
        self._ordered = sorted(self._secrets, key=len, reverse=True)

    def clear(self) -> None:
        self._secrets.clear()
        self._ordered = []

    def __call__(self, text: str) -> str:
        for secret in self._ordered:
            if secret in text:
                text = text.replace(secret, MASK)
        return _URL_CREDENTIALS.sub(lambda m: "://" + MASK + "@", text)


REDACTOR = Redactor()


def register_own_credentials(environ: Mapping[str, str], redactor: Redactor | None = None
                             ) -> int:
    """Register the builder's own AWS credentials found in `environ` (os.environ inside
    Lambda) so that no answer or log line shows them; the number registered."""
    redactor = REDACTOR if redactor is None else redactor
    found = [environ.get(name) for name in OWN_CREDENTIALS]
    for value in found:
        redactor.add(value)
    return sum(1 for value in found if value and len(value) >= MIN_SECRET_LENGTH)


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
