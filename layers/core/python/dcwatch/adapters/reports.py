"""The recovery reports in the stack's report bucket (S3): written once, never overwritten or deleted by us.

The bucket is versioned, encrypted, deny-delete (Object Lock where the config asks): what is put here is the
evidence of a drill or a failover. The `ReportStore` port."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from dcwatch.adapters.aws import LazyClient, aws_call


class S3Reports:
    def __init__(self, bucket: str, client: Any | None = None):
        self.bucket = bucket
        self._client = LazyClient("s3", client)

    def put_report(self, key: str, html: str) -> str:
        """Stores the page under `key`; its place as people open it: the object's page in the S3 console
        (the bucket is private: a signed-in operator opens it there)."""
        try:
            with aws_call("s3:PutObject"):
                self._client().put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=html.encode("utf-8"),
                    ContentType="text/html; charset=utf-8",
                    IfNoneMatch="*",  # written once: a second put of the key is refused (412)
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "PreconditionFailed":
                raise
            # A retried step: the first attempt's report stands.
        return console_url(self.bucket, key)


def console_url(bucket: str, key: str) -> str:
    """The object's page in the S3 console (the commercial partition's address)."""
    return f"https://s3.console.aws.amazon.com/s3/object/{bucket}?prefix={quote(key, safe='')}"
