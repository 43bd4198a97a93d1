"""Secrets are redacted in every form they travel in, in linear time."""
from __future__ import annotations

import base64
import logging
import time
from urllib.parse import quote, quote_plus

import pytest

from builder.redact import MASK, RedactingFilter, Redactor, register_own_credentials

TOKEN = "ghp_Sx/+y=z&tok3n?"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def redactor():
    redactor = Redactor()
    redactor.add(TOKEN)
    return redactor


@pytest.mark.parametrize("form", [
    TOKEN,
    b64(f"x-access-token:{TOKEN}"),
    b64(TOKEN),
    b64(TOKEN).rstrip("="),
    base64.urlsafe_b64encode(TOKEN.encode()).decode(),
    quote(TOKEN, safe=""),
    quote(TOKEN),
    quote_plus(TOKEN),
])
def test_every_encoded_form_of_a_secret_is_masked(redactor, form):
    assert form != TOKEN or form in f"a {form} b"
    cleaned = redactor(f"Authorization: Basic {form} and more")
    assert form not in cleaned and MASK in cleaned


def test_the_basic_auth_form_with_a_url_username_is_masked():
    redactor = Redactor()
    redactor.add("s3cr3t-pass", username="alice")
    line = f"Authorization: Basic {b64('alice:s3cr3t-pass')}"
    assert redactor(line) == f"Authorization: Basic {MASK}"


def test_short_values_are_not_secrets():
    redactor = Redactor()
    redactor.add("abc")
    assert redactor("abc abcd") == "abc abcd"


def test_url_credentials_are_masked():
    redactor = Redactor()
    assert redactor("see https://me:pw@host/x, git+https://u:p@h/r") == \
        f"see https://{MASK}@host/x, git+https://{MASK}@h/r"


@pytest.mark.parametrize("text", [
    "a" * 100_000,
    "a:" * 50_000,
    "https://" * 12_000,
    "x" * 50_000 + "://" + "a:" * 25_000,
])
def test_url_credential_scan_is_linear(text):
    started = time.monotonic()
    Redactor()(text)
    assert time.monotonic() - started < 0.5


def test_the_builders_own_credentials_are_registered_from_its_environment():
    environ = {
        "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEYID0001",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjEXAMPLE//session+token==",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-auth-token-123",
        "AWS_REGION": "eu-west-1",
    }
    redactor = Redactor()
    assert register_own_credentials(environ, redactor) == 4
    names = [n for n in environ if n != "AWS_REGION"]
    text = " ".join(f"{n}={environ[n]} {quote(environ[n], safe='')}" for n in names)
    cleaned = redactor(text + " region eu-west-1")
    assert not any(environ[n] in cleaned or quote(environ[n], safe="") in cleaned
                   for n in names)
    assert "eu-west-1" in cleaned


def test_log_lines_carrying_own_credentials_are_redacted(caplog):
    redactor = Redactor()
    register_own_credentials({"AWS_SECRET_ACCESS_KEY": "topsecretvalue"}, redactor)
    logger = logging.getLogger("tests.security.redaction")
    caplog.handler.addFilter(RedactingFilter(redactor))
    with caplog.at_level(logging.INFO):
        logger.info("uv said: %s", "environ AWS_SECRET_ACCESS_KEY=topsecretvalue")
    assert "topsecretvalue" not in caplog.text and MASK in caplog.text
