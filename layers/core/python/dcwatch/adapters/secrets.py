"""vCenter credentials from Secrets Manager; the values never reach logs or events."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import VcenterUnavailable


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)


class SecretsManagerCredentials:
    def __init__(self, client: Any | None = None):
        self._client = LazyClient("secretsmanager", client)
        self._cache: dict[str, Credentials] = {}

    def get(self, secret_id: str) -> Credentials:
        if secret_id not in self._cache:
            with aws_call("secretsmanager:GetSecretValue"):
                raw = self._client().get_secret_value(SecretId=secret_id)["SecretString"]
            try:
                data = json.loads(raw)
                self._cache[secret_id] = Credentials(str(data["username"]), str(data["password"]))
            except (ValueError, KeyError, TypeError):
                raise VcenterUnavailable(f"secret {secret_id} must be JSON with 'username' and 'password'") from None
        return self._cache[secret_id]
