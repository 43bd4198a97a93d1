"""Fetches and renders reports."""
from __future__ import annotations

import requests
import yaml
from shopcore import ok

VERSION = "1"


def handler(event, context):
    library = f"{requests.__version__}/{yaml.__version__}"
    return ok({"service": "reports", "version": VERSION, "library": library})
