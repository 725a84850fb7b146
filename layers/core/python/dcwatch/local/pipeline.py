"""The local pipeline: both simulated sites, moto with dcwatch's resources, and the event plumbing.

Built from the config alone (sites, VMs, services, records), so any valid config runs. Used by
`dcwatch demo` and by the integration and end-to-end tests; stops everything it started.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
from dcwatch.adapters.route53 import Route53Dns
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, load_config
from dcwatch.local.cloud import LocalCloud, QueuePump, Resources
from dcwatch.local.lambdas import ACCOUNT, LocalLambdas
from dcwatch.local.services import DemoServices
from dcwatch.local.vcsim import VcsimProcess, create_vms
from dcwatch.wiring import RULES

Listener = Callable[[dict[str, Any]], None]


class LocalPipeline:
    def __init__(
        self,
        config_path: str | Path,
        *,
        on_site_status: Listener = lambda event: None,
        on_notification: Listener = lambda body: None,
        on_power_on: Callable[[str, str], None] = lambda site, vm: None,
        on_site_built: Callable[[str, int], None] = lambda site, vms: None,
    ):
        self.config_path = str(Path(config_path).resolve())
        self.config: Config = load_config(self.config_path)
        self.credentials = {s.name: Credentials("dcwatch", secrets.token_urlsafe(12)) for s in self.config.sites}
        self.site_status: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self._listeners = (on_site_status, on_notification, on_power_on, on_site_built)
        self._lock = threading.Lock()
        self._stack = ExitStack()
        self.vcsims: dict[str, VcsimProcess] = {}

    def __enter__(self) -> LocalPipeline:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        config, stack = self.config, self._stack
        on_site_status, on_notification, on_power_on, on_site_built = self._listeners
        for site in config.sites:
            process = VcsimProcess(site.name, site.vcenter, self.credentials[site.name]).start()
            stack.callback(process.stop)
            self.vcsims[site.name] = process
            vms = [
                (vm.name, site.name == config.active_site) for _, at in config.services_at(site.name) for vm in at.vms
            ]
            create_vms(site.vcenter, self.credentials[site.name], vms)
            on_site_built(site.name, len(vms))

        self.cloud = LocalCloud(config, self.config_path).start()
        stack.callback(self.cloud.stop)
        self.resources: Resources = self.cloud.provision(self.credentials)
        assert self.cloud.lambdas is not None
        self.lambdas: LocalLambdas = self.cloud.lambdas

        self.services = DemoServices(config, self.credentials, on_power_on=on_power_on).start()
        stack.callback(self.services.stop)

        def keep(into: list[dict[str, Any]], listener: Listener) -> Listener:
            def consume(item: dict[str, Any]) -> None:
                with self._lock:
                    into.append(item)
                listener(item)

            return consume

        self.pump = QueuePump(self.cloud)
        for rule in RULES:
            self.pump.route(self.resources.rule_queues[rule.name], partial(self._deliver, rule.target))
        self.pump.route(self.resources.site_status_queue, keep(self.site_status, on_site_status))
        self.pump.route(self.resources.notification_queue, keep(self.notifications, on_notification))
        self.pump.start()
        stack.callback(self.pump.stop)

    def _deliver(self, key: str, event: dict[str, Any]) -> None:
        """A rule's target invoked with the matched event, as EventBridge invokes a Lambda target."""
        event.setdefault("account", ACCOUNT)  # moto's delivery to SQS leaves out `account`
        payload, error = self.lambdas.invoke(f"{self.cloud.prefix}-{key}", event)
        if error:
            raise RuntimeError(f"{key}: {payload.get('errorType')}: {payload.get('errorMessage')}")

    def function(self, key: str) -> str:
        return f"{self.cloud.prefix}-{key}"

    def invoke(self, key: str, event: dict[str, Any]) -> tuple[Any, str | None]:
        return self.lambdas.invoke(self.function(key), event)

    def fail_site(self, site: str) -> None:
        """The outage: the site's vCenter stops and every one of its services goes dark."""
        self.vcsims[site].stop()
        self.services.fail_site(site)

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

    @property
    def dns(self) -> Route53Dns:
        return Route53Dns(self.cloud.client("route53"))

    def dns_values(self) -> dict[str, list[str]]:
        dns = self.dns
        return {s.dns.name: dns.values(s.dns.zone, s.dns.name, s.dns.type) for s in self.config.services}
