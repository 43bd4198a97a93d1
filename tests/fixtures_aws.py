"""Fixtures for the aws side of the tests."""
