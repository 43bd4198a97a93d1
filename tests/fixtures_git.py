"""Fixtures for the git side of the tests."""
