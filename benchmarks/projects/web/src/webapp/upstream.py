"""Forwarding orders upstream with a retrying requests session (used on demand)."""
from __future__ import annotations

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


def session(retries: int = 3) -> requests.Session:
    s = requests.Session()
    adapter = HTTPAdapter(max_retries=Retry(total=retries, backoff_factor=0.2))
    s.mount("https://", adapter)
    return s


def forward(url: str, payload: dict, timeout: float = 5) -> int:
    return session().post(url, json=payload, timeout=timeout).status_code
