"""Fixtures for the OIDC side of the tests: a local issuer standing in for GitHub's."""
from __future__ import annotations

import pytest

from lambda3.embedded.oidc_issuer import OidcIssuer


@pytest.fixture
def oidc_issuer():
    """A running `OidcIssuer` on 127.0.0.1 (claims of a push to main of octo-org/octo-repo)."""
    with OidcIssuer() as issuer:
        yield issuer
