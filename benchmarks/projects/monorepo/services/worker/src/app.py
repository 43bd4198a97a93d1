"""Reads job descriptions written as YAML."""
from __future__ import annotations

import yaml
from shopcore import ok

VERSION = "1"


def handler(event, context):
    return ok({"service": "worker", "version": VERSION, "library": yaml.__version__})
