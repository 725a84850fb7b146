"""dcwatch as deployed in the local AWS, read and driven as an operator or a test would: its functions, the
failover executions, its state, leases and records."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import UTC, datetime
from typing import Any

from dcwatch.adapters.agent_aws import DynamoSiteLeases, SiteLease
from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.adapters.route53 import Route53Dns
from dcwatch.adapters.stepfunctions import Approvals
from dcwatch.config import Config
from dcwatch.control import answer_approval
from dcwatch.local.cloud import LocalCloud, Resources
from dcwatch.local.lambdas import LocalLambdas
from dcwatch.observability import logger

APPROVAL_TOKEN = re.compile(r"--token (\S+)")
DENIED_AT_RESET = "the local runtime resets between scenarios: no one approved"


class LocalDeployment:
    """The deployment's views: what `LocalPipeline` offers its callers once it has started (the base of the
    pipeline, which sets `config`, `cloud`, `lambdas`, `resources`, and the notifications sent with their lock)."""

    config: Config
    cloud: LocalCloud
    lambdas: LocalLambdas
    resources: Resources
    notifications: list[dict[str, Any]]
    _lock: threading.Lock

    def function(self, key: str) -> str:
        return f"{self.cloud.prefix}-{key}"

    def invoke(self, key: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        return self.lambdas.invoke(self.function(key), event)

    def start_failover(self, request: dict[str, Any], name: str) -> str:
        sfn = self.cloud.client("stepfunctions")
        return str(
            sfn.start_execution(stateMachineArn=self.resources.state_machine_arn, name=name, input=json.dumps(request))[
                "executionArn"
            ]
        )

    def wait_execution(self, arn: str, timeout_s: float = 60) -> dict[str, Any]:
        sfn = self.cloud.client("stepfunctions")
        deadline = time.monotonic() + timeout_s
        while (described := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise TimeoutError(f"execution {arn} still running after {timeout_s:g} s")
            time.sleep(0.1)
        return dict(described)

    def wait_executions_end(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while any(e["status"] == "RUNNING" for e in self.executions()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"failover workflows still running after {timeout_s:g} s")
            time.sleep(0.2)

    def history(self, arn: str) -> list[dict[str, Any]]:
        return list(
            self.cloud.client("stepfunctions").get_execution_history(executionArn=arn, maxResults=1000)["events"]
        )

    def executions(self) -> list[dict[str, Any]]:
        sfn = self.cloud.client("stepfunctions")
        return list(sfn.list_executions(stateMachineArn=self.resources.state_machine_arn)["executions"])

    @property
    def store(self) -> DynamoStateStore:
        return DynamoStateStore(
            self.resources.table_name, self.resources.audit_table_name, self.cloud.client("dynamodb")
        )

    @property
    def leases(self) -> DynamoLeases:
        return DynamoLeases(self.resources.locks_table_name, self.cloud.client("dynamodb"))

    def site_lease(self, site: str) -> SiteLease | None:
        """The site's agent lease as the locks table holds it."""
        return DynamoSiteLeases(self.resources.locks_table_name, site, self.cloud.client("dynamodb")).read()

    @property
    def dns(self) -> Route53Dns:
        return Route53Dns(self.cloud.client("route53"), zone_ids=self.resources.zone_ids)

    def dns_values(self) -> dict[str, list[str]]:
        dns = self.dns
        return {s.dns.name: dns.values(s.dns.zone, s.dns.name, s.dns.type) for s in self.config.services}

    def deny_waiting_approvals(self) -> list[str]:
        """Deny every approval asked for (no one answers between scenarios), as an operator would with `dcwatch
        deny`: the waiting workflows end, nothing changed. The tokens are in the APPROVAL NEEDED messages."""
        with self._lock:
            messages = [str(n.get("Message") or "") for n in self.notifications]
        tokens = sorted({token for text in messages for token in APPROVAL_TOKEN.findall(text)})
        approvals, denied = Approvals(self.cloud.client("stepfunctions")), []
        for token in tokens:
            try:
                answer_approval(
                    self.store, approvals, token, False, DENIED_AT_RESET, "local-runtime", datetime.now(UTC)
                )
                denied.append(token)
            except Exception as exc:  # noqa: BLE001 - its workflow ended already
                logger.info("approval not answered", error=str(exc)[:200])
        return denied
