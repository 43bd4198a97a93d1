"""API Gateway responses."""
from __future__ import annotations

import json


def ok(body, status: int = 200) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, sort_keys=True)}


def error(message: str, status: int = 400) -> dict:
    return ok({"error": message}, status)
