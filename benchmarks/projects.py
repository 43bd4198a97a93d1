"""The two projects the benchmark builds, kept as files under benchmarks/projects/.

Each is a Lambda function (a handler plus a package of its own) with a dependencies
layer, a custom layer shared by both, a lambda3 build.yaml and the equivalent SAM
template.yaml, for runtime python3.11 on x86_64:

- web: requests, pydantic, cryptography, PyYAML (a signed-webhook receiver);
- data: pandas, numpy, requests, pydantic (a CSV/records aggregator).

`write_projects()` (re)writes them from the texts below, so the committed files and this
module never drift apart; `bump_version()` is the code-only change of the redeploy runs.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

PROJECTS_DIR = Path(__file__).resolve().parent / "projects"
RUNTIME = "python3.11"
ROLE = "arn:aws:iam::123456789012:role/lambda3-bench"

REQUIREMENTS = {
    "web": "requests>=2.31,<3\npydantic>=2.5,<3\ncryptography>=42\nPyYAML>=6.0.1\n",
    "data": "pandas>=2.1\nnumpy>=1.26\nrequests>=2.31,<3\npydantic>=2.5,<3\n",
}
PACKAGES = {"web": "webapp", "data": "analytics"}

BUILD_YAML = """\
# yaml-language-server: $schema=../../../builder/build.schema.json
function:
  runtimes: [{runtime}]
  handler: app.handler
  role: {role}
  source_dir: src
  files: [app.py, {package}]
  memory: {memory}
  timeout: 30
layers:
  dependencies: [deps/requirements.txt]
  shared:
    description: response and logging helpers shared by the benchmark projects
    source_dir: shared
    dest_dir: python
    files: [benchshared]
"""

TEMPLATE_YAML = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: lambda3 benchmark project {name}, the same function and layers for sam build
Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Runtime: {runtime}
      Architectures: [x86_64]
      MemorySize: {memory}
      Timeout: 30
      Layers:
        - !Ref Dependencies
        - !Ref Shared
  Dependencies:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: deps/
      CompatibleRuntimes: [{runtime}]
    Metadata:
      BuildMethod: {runtime}
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: shared/
      CompatibleRuntimes: [{runtime}]
    Metadata:
      BuildMethod: {runtime}
"""

SHARED = {
    "shared/benchshared/__init__.py": '''\
"""Helpers shared by the benchmark functions (shipped as a custom layer)."""
from benchshared.responses import error, ok

__all__ = ["error", "ok"]
''',
    "shared/benchshared/responses.py": '''\
"""API Gateway proxy responses."""
from __future__ import annotations

import json
from typing import Any


def ok(body: Any, status: int = 200) -> dict:
    return {"statusCode": status, "headers": {"content-type": "application/json"},
            "body": json.dumps(body, sort_keys=True, default=str)}


def error(message: str, status: int = 400) -> dict:
    return ok({"error": message}, status)
''',
}

WEB = {
    "src/app.py": '''\
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
''',
    "src/webapp/__init__.py": '"""The web function\'s own code."""\n',
    "src/webapp/config.py": '''\
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
''',
    "src/webapp/models.py": '''\
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
''',
    "src/webapp/signing.py": '''\
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
''',
    "src/webapp/upstream.py": '''\
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
''',
    "event.json": json.dumps({
        "headers": {},
        "body": json.dumps({"id": "o-1", "customer": "c-9",
                            "lines": [{"sku": "A", "quantity": 2, "price": "9.50"}]}),
    }, indent=2) + "\n",
}

DATA = {
    "src/app.py": '''\
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
''',
    "src/analytics/__init__.py": '"""The data function\'s own code."""\n',
    "src/analytics/models.py": '''\
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
''',
    "src/analytics/frames.py": '''\
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
''',
    "event.json": json.dumps({"records": [
        {"region": "eu", "amount": 12.5, "units": 2},
        {"region": "us", "amount": 40.0, "units": 1},
        {"region": "eu", "amount": 7.25, "units": 3},
    ]}, indent=2) + "\n",
}

MEMORY = {"web": 512, "data": 1024}
NAMES = ("web", "data")


def project_files(name: str) -> dict[str, str]:
    """Every file of project `name`, path -> text."""
    own = {"web": WEB, "data": DATA}[name]
    params = {"name": name, "runtime": RUNTIME, "role": ROLE, "package": PACKAGES[name],
              "memory": MEMORY[name]}
    return {
        "build.yaml": BUILD_YAML.format(**params),
        "template.yaml": TEMPLATE_YAML.format(**params),
        "deps/requirements.txt": REQUIREMENTS[name],
        **SHARED,
        **own,
    }


def write_project(name: str, dest: Path) -> Path:
    """Write project `name` into `dest`, only the files whose text differs."""
    for rel, text in sorted(project_files(name).items()):
        path = dest / rel
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return dest


def write_projects(root: Path = PROJECTS_DIR) -> dict[str, Path]:
    return {name: write_project(name, root / name) for name in NAMES}


def bump_version(project: Path, version: str) -> None:
    """The code-only change: a new VERSION in the handler."""
    app = project / "src" / "app.py"
    text = re.sub(r'^VERSION = ".*"$', f'VERSION = "{version}"', app.read_text(), count=1,
                  flags=re.M)
    app.write_text(text)
