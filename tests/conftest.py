"""Shared fixtures live in tests/fixtures_*.py, one module per real part."""

pytest_plugins = [
    "tests.fixtures_git",
    "tests.fixtures_aws",
    "tests.fixtures_oidc",
    "tests.fixtures_index",
]
