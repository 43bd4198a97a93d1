"""Response helpers shared by every service of the shop."""
from __future__ import annotations

from shopcore.responses import error, ok

VERSION = "1"

__all__ = ["VERSION", "error", "ok"]
