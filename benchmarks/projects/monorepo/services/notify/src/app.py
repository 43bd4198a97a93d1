"""Sends notifications (standard library only)."""
from __future__ import annotations

import json

from shopcore import ok

VERSION = "1"


def handler(event, context):
    return ok({"service": "notify", "version": VERSION, "library": json.__name__})
