"""Zips over Lambda's 50 MB direct-upload limit go through the artifact bucket, once."""
from __future__ import annotations

import os

import pytest

from builder.aws import Aws
from builder.clients import Clients
from builder.contract import BuildRequest
from builder.errors import Lambda3Error
from builder.handler import deploy_request
from builder.timing import Timings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def big_project(tmp_path_factory):
    root = tmp_path_factory.mktemp("big")
    (root / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "blob").mkdir()
    (root / "blob" / "random.bin").write_bytes(os.urandom(51 * 1024 * 1024))
    (root / "build.yaml").write_text(
        "function:\n  runtimes: [python3.11]\n  handler: app.handler\n"
        "  role: ROLE\n  files: [app.py]\nlayers:\n  blob:\n    files: [blob]\n")
    return root


def deploy(aws, project, function, bucket, uploads):
    spec = project / "build.yaml"
    spec.write_text(spec.read_text().replace("ROLE", aws.lambda_role()))
    wrapper = Aws(Clients(region=aws.region, endpoint_url=aws.endpoint_url),
                  sleep=lambda s: None)
    for operation in ("PutObject", "CreateMultipartUpload"):
        wrapper.clients("s3").meta.events.register(
            f"before-call.s3.{operation}", lambda **kw: uploads.append(kw["model"].name))
    request = BuildRequest.from_event({"repository": str(project), "function": function,
                             "bucket": bucket, "alias": "live"})
    try:
        return deploy_request(request, Timings(), aws=wrapper).to_json()
    except Lambda3Error as error:
        return {"ok": False, "error": error.to_dict()}


def test_large_layer_goes_through_s3_once(aws, big_project, tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBDA3_WORKDIR", str(tmp_path / "work"))
    client = aws.client("lambda")
    refused = deploy(aws, big_project, "big", None, [])
    assert refused["ok"] is False and refused["error"]["step"] == "limits"
    assert "bucket" in refused["error"]["message"]
    assert client.list_layers()["Layers"] == []

    aws.client("s3").create_bucket(Bucket="art")
    uploads: list[str] = []
    first = deploy(aws, big_project, "big", "art", uploads)
    assert first["ok"], first
    assert uploads, "the large zip was not uploaded"
    uploaded = [step for step in first["plan"] if step["action"] == "UploadArtifact"]
    assert [step["component"] for step in uploaded] == ["blob"]
    key = uploaded[0]["key"]
    assert key.startswith("lambda3/artifacts/") and key.endswith(".zip")
    head = aws.client("s3").head_object(Bucket="art", Key=key)
    blob = next(layer for layer in first["layers"] if layer["component"] == "blob")
    assert head["ContentLength"] == blob["size"] > 50 * 1024 * 1024
    version = client.get_layer_version(LayerName="big-blob", VersionNumber=1)
    assert version["Content"]["CodeSha256"] == blob["code_sha256"]

    again: list[str] = []
    second = deploy(aws, big_project, "big2", "art", again)
    assert second["ok"], second
    assert again == []  # the same content is already in the bucket
    assert not any(step["action"] == "UploadArtifact" for step in second["plan"])
    assert any(step["action"] == "PublishLayerVersion" for step in second["plan"])
