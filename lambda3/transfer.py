"""Moving a zip into another function or account: its download from the location Lambda
gives (GetFunction's or GetLayerVersion's Content.Location, with the source's credentials),
checked against the CodeSha256 Lambda gave for it, and its content for an upload on the
target: the bytes in the call up to Lambda's direct-upload limit, beyond it an object in an
S3 bucket of the target (content-addressed, so nothing is uploaded twice)."""
from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable
from typing import Any

from builder import limits
from builder.aws import Aws
from builder.errors import AwsError, LimitError
from builder.package import code_sha256_of
from builder.plan import artifact_key

Fetch = Callable[[str], bytes]


def download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as answer:  # noqa: S310 - Lambda's URL
        return answer.read()


def checked(fetch: Fetch, url: str | None, expected: str, what: str) -> bytes:
    """The bytes at `url` (the location of `what`), refused unless their CodeSha256 is
    `expected`. The URL is presigned: it never appears in a message."""
    if not url:
        raise AwsError(f"{what} has no download location (a container image?): only zips "
                       "are promoted")
    try:
        data = fetch(url)
    except (OSError, ValueError) as error:  # urllib's errors; the URL is not in them
        raise AwsError(f"downloading {what} failed ({error}): check the network, then "
                       "re-run the promote") from None
    sha = code_sha256_of(data)
    if sha != expected:
        raise AwsError(f"{what} as downloaded has CodeSha256 {sha}, not {expected}: "
                       "re-run the promote")
    return data


def check_size(size: int, bucket: str | None, what: str) -> None:
    """Refuse, before anything is published, a zip too large to upload without a bucket."""
    if limits.needs_s3(size) and not bucket:
        raise LimitError(
            f"{what} is {limits.human(size)} zipped, over Lambda's "
            f"{limits.human(limits.DIRECT_UPLOAD_LIMIT)} direct-upload limit: pass --bucket "
            f"BUCKET (an S3 bucket of the target account, in its region) to upload it through S3")


def content(aws: Aws, data: bytes, bucket: str | None, what: str) -> dict[str, Any]:
    """`ZipFile`, or `S3Bucket` and `S3Key` of the zip put in `bucket` (once per content):
    the Content of PublishLayerVersion, or the code arguments of UpdateFunctionCode."""
    check_size(len(data), bucket, what)
    if not limits.needs_s3(len(data)):
        return {"ZipFile": data}
    key = artifact_key(hashlib.sha256(data).hexdigest())
    if not aws.s3_object_exists(bucket, key):
        aws.call("s3", "put_object", idempotent=True, Bucket=bucket, Key=key, Body=data)
    return {"S3Bucket": bucket, "S3Key": key}
