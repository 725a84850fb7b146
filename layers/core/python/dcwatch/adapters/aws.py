"""Shared plumbing of the AWS adapters: lazy clients and SDK faults turned into domain errors."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ConnectionError, EndpointConnectionError

from dcwatch.errors import TransientError

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "PriorRequestNotComplete",
    "InternalServerError",  # DynamoDB
    "InternalServiceError",  # Secrets Manager
    "KMSThrottlingException",  # SNS, DynamoDB, Secrets Manager asking KMS for a key of theirs
    "DependencyTimeoutException",  # KMS
    "TransactionConflictException",  # DynamoDB: another transaction on the same item, retried
}
# A DynamoDB transaction cancelled only for these reasons went wrong for the moment, not for good.
_TRANSIENT_CANCELLATIONS = {"None", "ThrottlingError", "TransactionConflict", "ProvisionedThroughputExceeded"}
_CLIENT_CONFIG = BotoConfig(retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10)


def client(service: str, region: str | None = None) -> Any:
    """A boto3 client (of the function's own region unless told); AWS_ENDPOINT_URL points it at moto locally."""
    return boto3.client(service, region_name=region, config=_CLIENT_CONFIG)  # type: ignore[call-overload]


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, (ConnectionError, EndpointConnectionError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code")
    if code == "TransactionCanceledException":
        reasons = {str(r.get("Code")) for r in exc.response.get("CancellationReasons", [])}  # type: ignore[attr-defined]
        return bool(reasons) and reasons <= _TRANSIENT_CANCELLATIONS and reasons != {"None"}
    return code in _TRANSIENT_CODES


@contextmanager
def aws_call(what: str) -> Iterator[None]:
    """Name the failed call and mark it transient where a retry may help."""
    try:
        yield
    except (ClientError, ConnectionError, EndpointConnectionError) as exc:
        if is_transient(exc):
            raise TransientError(f"{what}: {exc}") from exc
        raise


class LazyClient:
    """Holds an injected client or creates the default one on first use."""

    def __init__(self, service: str, injected: Any | None, factory: Callable[[str], Any] = client):
        self._service, self._client, self._factory = service, injected, factory

    def __call__(self) -> Any:
        if self._client is None:
            self._client = self._factory(self._service)
        return self._client
