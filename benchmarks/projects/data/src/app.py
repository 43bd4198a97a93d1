"""Aggregates sales records (inline or fetched CSV) into per-region statistics."""
from __future__ import annotations

from analytics.frames import summarise
from analytics.models import Request
from benchshared import error, ok

VERSION = "1"


def handler(event, context):
    try:
        request = Request.model_validate(event)
    except ValueError as exc:
        return error(str(exc))
    return ok({"version": VERSION, "summary": summarise(request)})
