"""pandas/numpy aggregation."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import requests


def load(request) -> pd.DataFrame:
    if request.records:
        return pd.DataFrame([r.model_dump() for r in request.records])
    response = requests.get(request.csv_url, timeout=10)
    response.raise_for_status()
    return pd.read_csv(io.StringIO(response.text))


def summarise(request) -> dict:
    frame = load(request)
    grouped = frame.groupby("region").agg(amount=("amount", "sum"), units=("units", "sum"))
    amounts = frame["amount"].to_numpy(dtype=float)
    return {
        "regions": {k: {"amount": float(v["amount"]), "units": int(v["units"])}
                    for k, v in grouped.to_dict("index").items()},
        "percentiles": dict(zip(map(str, request.percentiles),
                                np.percentile(amounts, request.percentiles).round(4).tolist(),
                                strict=True)),
    }
