"""The agent's secrets: the heartbeat key, its vCenter's credentials and its hooks' headers, read from files or
from Secrets Manager (kept in memory, so that an agent cut off from AWS still uses them)."""

from __future__ import annotations

from pathlib import Path

from dcwatch.adapters.agent_aws import KeptSecrets, credentials_from_text, read_key_file
from dcwatch.adapters.secrets import Credentials, headers_from_text
from dcwatch.config import Fencing
from dcwatch.config.fencing import SiteAgent
from dcwatch.observability import logger


class AgentSecrets:
    def __init__(self, site: str, fencing: Fencing, me: SiteAgent, secrets: KeptSecrets):
        self.site, self.fencing, self.me, self.secrets = site, fencing, me, secrets
        self.key_missing = False

    def heartbeat_key(self) -> bytes | None:
        """The shared key; None while its secret cannot be read (AWS away at start), so that the agent still
        runs, counts no peer contact, and fences on time if it reaches neither voter."""
        if self.fencing.secret_file is not None:
            return read_key_file(self.fencing.secret_file)
        assert self.fencing.secret_id is not None
        try:
            return self.secrets.get(self.fencing.secret_id).strip().encode()
        except Exception as exc:  # noqa: BLE001 - read again once AWS answers
            logger.error("heartbeat key unavailable", site=self.site, secret=self.fencing.secret_id, error=str(exc))
            self.key_missing = True
            return None

    def recovered_key(self) -> bytes | None:
        """The heartbeat key once it can be read again after it could not; None otherwise."""
        if self.key_missing and (key := self.heartbeat_key()) is not None:
            self.key_missing = False
            return key
        return None

    def vcenter_credentials(self, secret_id: str) -> Credentials:
        if self.me.vcenter_credentials_file is not None:
            path = self.me.vcenter_credentials_file
            return credentials_from_text(Path(path).read_text(encoding="utf-8"), path)
        return credentials_from_text(self.secrets.get(secret_id), f"secret {secret_id}")

    def headers(self, secret_id: str) -> dict[str, str]:
        return headers_from_text(self.secrets.get(secret_id), f"headers_secret {secret_id}")
