"""The request: records inline, or a CSV URL to fetch."""
from __future__ import annotations

from pydantic import BaseModel, model_validator


class Record(BaseModel):
    region: str
    amount: float
    units: int = 1


class Request(BaseModel):
    records: list[Record] = []
    csv_url: str | None = None
    percentiles: list[float] = [50, 90, 99]

    @model_validator(mode="after")
    def _one_source(self):
        if not self.records and not self.csv_url:
            raise ValueError("give records or csv_url")
        return self
