"""The shop's HTTP API: answers with the service's versions."""
from __future__ import annotations

import requests
from shopcore import ok

VERSION = "1"


def handler(event, context):
    return ok({"service": "api", "version": VERSION, "library": requests.__version__})
