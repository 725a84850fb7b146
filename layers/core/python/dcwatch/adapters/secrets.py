"""vCenter credentials from Secrets Manager; the values never reach logs or events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import VcenterRefused


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


# A warm function reads a rotated secret again within this many seconds (see the README on rotation).
MAX_AGE_S = 300.0


class SecretsManagerCredentials:
    def __init__(
        self, client: Any | None = None, max_age_s: float = MAX_AGE_S, clock: Callable[[], float] = time.monotonic
    ):
        self._client = LazyClient("secretsmanager", client)
        self._cache: dict[str, tuple[float, Credentials]] = {}
        self._max_age_s, self._clock = max_age_s, clock

    def get(self, secret_id: str) -> Credentials:
        cached = self._cache.get(secret_id)
        if cached is not None and self._clock() - cached[0] < self._max_age_s:
            return cached[1]
        try:
            with aws_call("secretsmanager:GetSecretValue"):
                raw = self._client().get_secret_value(SecretId=secret_id)["SecretString"]
        except ClientError as exc:  # not found, access denied, no key to decrypt it: a throttle is TransientError
            code = exc.response.get("Error", {}).get("Code", "error")
            raise VcenterRefused(f"secret {secret_id} of the vCenter credentials cannot be read: {code}") from None
        try:
            data = json.loads(raw)
            credentials = Credentials(str(data["username"]), str(data["password"]))
        except (ValueError, KeyError, TypeError):
            raise VcenterRefused(f"secret {secret_id} must be JSON with 'username' and 'password'") from None
        self._cache[secret_id] = (self._clock(), credentials)
        return credentials
