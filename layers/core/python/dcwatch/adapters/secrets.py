"""Secrets from Secrets Manager (vCenter credentials, the headers of checks and hooks); the values never
reach logs, events or the reasons of failed checks."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import SecretUnusable, VcenterRefused


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


# A warm function reads a rotated secret again within this many seconds (see docs/deploy.md on rotation).
MAX_AGE_S = 300.0
# RFC 9110: a field name is a token; a value has no line breaks (nor NUL), so no secret can add a header or a request.
HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
HEADER_VALUE_FORBIDDEN = re.compile(r"[\r\n\0]")


def headers_from_text(text: str, where: str) -> dict[str, str]:
    """The headers a `headers_secret` holds: a JSON object of header names to text values, refused whole
    if any entry could not be sent as it is (the message names the entry, never a value)."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not data:
        raise SecretUnusable(f'{where} must be a JSON object of header names to values, e.g. {{"Authorization": ...}}')
    for name, value in data.items():
        if not HEADER_NAME.match(name):
            raise SecretUnusable(f"{where}: {name[:40]!r} is not a header name")
        if not isinstance(value, str) or HEADER_VALUE_FORBIDDEN.search(value):
            raise SecretUnusable(f"{where}: the value of {name} must be text on one line")
    return dict(data)


HeadersFor = Callable[[str], dict[str, str]]


# Reading a secret: its value, and (for the SDKs that look before they read) its description.
READ_SECRET_ACTIONS = ("secretsmanager:GetSecretValue",)
DESCRIBE_SECRET_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")


def secret_arn(name: str, *, partition: str, region: str, account: str) -> str:
    """The ARN that matches the secret named `name` (Secrets Manager adds six random characters to it); an ARN
    given for the name is kept as it is."""
    if name.startswith("arn:"):
        return name
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}-??????"


def read_secrets_statement(
    names: Sequence[str], *, partition: str, region: str, account: str, describe: bool = False
) -> dict[str, Any]:
    """The IAM statement (JSON) that lets a role read these secrets by name, each once; with `describe`, also
    describe them. The one home of this grant: the stack, the probe stacks and the site agents' policy use it."""
    return {
        "Effect": "Allow",
        "Action": list(DESCRIBE_SECRET_ACTIONS if describe else READ_SECRET_ACTIONS),
        "Resource": [
            secret_arn(name, partition=partition, region=region, account=account) for name in dict.fromkeys(names)
        ],
    }


def no_headers_secrets(secret_id: str) -> dict[str, str]:
    """For a caller given no secret store: a check or hook that names a headers secret fails, saying so."""
    raise SecretUnusable(f"headers_secret {secret_id}: this caller reads no secrets")


class SecretsManagerCredentials:
    def __init__(
        self, client: Any | None = None, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
    ):
        self._client = LazyClient("secretsmanager", client)
        self._cache: dict[str, tuple[float, str]] = {}
        self._max_age_s, self._clock = max_age_s, clock

    def _text(self, secret_id: str) -> str:
        """The secret's string, read again once older than `max_age_s`; ClientError out as it came."""
        cached = self._cache.get(secret_id)
        if cached is not None and self._clock() - cached[0] < self._max_age_s:
            return cached[1]
        with aws_call("secretsmanager:GetSecretValue"):
            text = str(self._client().get_secret_value(SecretId=secret_id)["SecretString"])
        self._cache[secret_id] = (self._clock(), text)
        return text

    def get(self, secret_id: str) -> Credentials:
        try:
            raw = self._text(secret_id)
        except ClientError as exc:  # not found, access denied, no key to decrypt it: a throttle is TransientError
            raise VcenterRefused(
                f"secret {secret_id} of the vCenter credentials cannot be read: {_code(exc)}"
            ) from None
        try:
            data = json.loads(raw)
            return Credentials(str(data["username"]), str(data["password"]))
        except (ValueError, KeyError, TypeError):
            raise VcenterRefused(f"secret {secret_id} must be JSON with 'username' and 'password'") from None

    def headers(self, secret_id: str) -> dict[str, str]:
        """The headers a check or hook sends from its `headers_secret`."""
        try:
            raw = self._text(secret_id)
        except ClientError as exc:
            raise SecretUnusable(f"headers_secret {secret_id} cannot be read: {_code(exc)}") from None
        return headers_from_text(raw, f"headers_secret {secret_id}")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "error"))
