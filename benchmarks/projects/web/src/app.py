"""Receives signed order webhooks: checks the signature, validates, summarises."""
from __future__ import annotations

import base64
import json

from benchshared import error, ok
from webapp.config import load_config
from webapp.models import Order
from webapp.signing import sign, verify

VERSION = "1"
CONFIG = load_config()


def handler(event, context):
    body = event.get("body") or "{}"
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
    signature = (event.get("headers") or {}).get("x-signature", "")
    if CONFIG["verify"] and not verify(raw, signature, CONFIG["secret"].encode()):
        return error("bad signature", 401)
    order = Order.model_validate(json.loads(raw))
    return ok({"version": VERSION, "order": order.id, "total": str(order.total()),
               "receipt": sign(order.id.encode(), CONFIG["secret"].encode())})
