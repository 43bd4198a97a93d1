"""The order payload."""
from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field


class Line(BaseModel):
    sku: str = Field(min_length=1)
    quantity: int = Field(gt=0)
    price: Decimal = Field(ge=0)


class Order(BaseModel):
    id: str
    customer: str
    lines: list[Line]

    def total(self) -> Decimal:
        return sum((line.price * line.quantity for line in self.lines), Decimal(0))
