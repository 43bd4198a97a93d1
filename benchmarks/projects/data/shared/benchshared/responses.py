"""API Gateway proxy responses."""
from __future__ import annotations

import json
from typing import Any


def ok(body: Any, status: int = 200) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, sort_keys=True, default=str)}


def error(message: str, status: int = 400) -> dict:
    return ok({"error": message}, status)
