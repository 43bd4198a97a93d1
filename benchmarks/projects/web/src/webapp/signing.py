"""HMAC-SHA256 signatures of webhook bodies (cryptography's primitives)."""
from __future__ import annotations

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac


def sign(data: bytes, key: bytes) -> str:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    return base64.b64encode(mac.finalize()).decode()


def verify(data: bytes, signature: str, key: bytes) -> bool:
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(data)
    try:
        mac.verify(base64.b64decode(signature))
    except (InvalidSignature, ValueError):
        return False
    return True
