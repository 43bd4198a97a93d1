"""Helpers shared by the benchmark functions (shipped as a custom layer)."""
from benchshared.responses import error, ok

__all__ = ["error", "ok"]
