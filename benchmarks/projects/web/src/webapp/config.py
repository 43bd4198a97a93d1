"""Settings from an embedded YAML document, overridable by environment variables."""
from __future__ import annotations

import os

import yaml

DEFAULTS = """
secret: change-me
verify: false
upstream:
  url: https://example.invalid/orders
  timeout: 5
"""


def load_config() -> dict:
    config = yaml.safe_load(DEFAULTS)
    config["secret"] = os.environ.get("WEBHOOK_SECRET", config["secret"])
    config["verify"] = os.environ.get("WEBHOOK_VERIFY", str(config["verify"])).lower() == "true"
    return config
