"""Validates orders."""
from __future__ import annotations

import pydantic
from shopcore import ok

VERSION = "1"


def handler(event, context):
    return ok({"service": "orders", "version": VERSION, "library": pydantic.VERSION})
