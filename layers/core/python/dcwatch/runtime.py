"""Composition root for the handlers: settings from the environment, the config, the adapters.

Read on first use, not at import, so tests and the local runtime can set the environment first. Each
adapter's module is imported on first use too: a cold start pays only for what its step touches (no
pyVmomi for a lease step, no aiohttp for a DNS step; `python -m bench.imports` measures it).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from dcwatch.config import Config, Hook, load_config
from dcwatch.ports import HookResult
from dcwatch.zones import ENV_HOSTED_ZONE_IDS, decode_zone_ids

if TYPE_CHECKING:
    from dcwatch.adapters.agent_aws import SiteLeaseTable
    from dcwatch.adapters.dynamodb import DynamoLeases, DynamoStateStore
    from dcwatch.adapters.eventbridge import EventBridgePublisher
    from dcwatch.adapters.hooks import HookCaller
    from dcwatch.adapters.idempotency import IdempotentSteps
    from dcwatch.adapters.reports import S3Reports
    from dcwatch.adapters.route53 import Route53Dns
    from dcwatch.adapters.secrets import SecretsManagerCredentials
    from dcwatch.adapters.sns import SnsNotifier
    from dcwatch.adapters.stepfunctions import Approvals, StepFunctionsStarter
    from dcwatch.adapters.vsphere import VsphereDrillLab, VsphereInventory
    from dcwatch.detection.checks import PlannedCheck
    from dcwatch.events import ProbeResult


@dataclass(frozen=True)
class Settings:
    """The environment a dcwatch function runs in (set by CDK, or by the local runtime)."""

    config_path: str
    bus_name: str = ""
    table_name: str = ""
    audit_table_name: str = ""
    locks_table_name: str = ""  # the failover lock (a lease)
    topic_arn: str = ""
    reports_bucket: str = ""  # the recovery reports' bucket; none: no report is written
    state_machine_arn: str = ""
    vantage: str = ""
    schedule_period_s: float = 60.0
    home_region: str = ""  # a probe in a second region publishes to, and reads secrets from, the home region
    idempotency_table_name: str = ""  # steps that act once record their actions here
    dns_resolver: str = ""  # verify DNS answers through this resolver instead of Route 53's TestDNSAnswer
    # The hosted zones the functions read and change, by id (`dcwatch.zones`): never looked up by name.
    hosted_zone_ids: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        if not env.get("DCWATCH_CONFIG"):
            raise RuntimeError("DCWATCH_CONFIG is not set: the path of the dcwatch config file")
        return cls(
            config_path=env["DCWATCH_CONFIG"],
            bus_name=env.get("DCWATCH_BUS_NAME", ""),
            table_name=env.get("DCWATCH_TABLE_NAME", ""),
            audit_table_name=env.get("DCWATCH_AUDIT_TABLE_NAME", ""),
            locks_table_name=env.get("DCWATCH_LOCKS_TABLE_NAME", ""),
            topic_arn=env.get("DCWATCH_TOPIC_ARN", ""),
            reports_bucket=env.get("DCWATCH_REPORTS_BUCKET", ""),
            state_machine_arn=env.get("DCWATCH_STATE_MACHINE_ARN", ""),
            vantage=env.get("DCWATCH_VANTAGE", ""),
            schedule_period_s=float(env.get("DCWATCH_SCHEDULE_PERIOD_S", "60")),
            home_region=env.get("DCWATCH_HOME_REGION", ""),
            idempotency_table_name=env.get("DCWATCH_IDEMPOTENCY_TABLE_NAME", ""),
            dns_resolver=env.get("DCWATCH_DNS_RESOLVER", ""),
            hosted_zone_ids=decode_zone_ids(env.get(ENV_HOSTED_ZONE_IDS, "")),
        )


class App:
    """Everything a handler needs, built lazily from `Settings`."""

    def __init__(self, settings: Settings):
        self.settings = settings

    @cached_property
    def config(self) -> Config:
        # The synth (or the local runtime) loaded this file before: the functions may read it the fast way.
        return load_config(self.settings.config_path, checked=True)

    @cached_property
    def vantage(self) -> str:
        return self.settings.vantage or self.config.probe.vantage

    def _home_client(self, service: str) -> Any | None:
        """A client of the home region when this function runs elsewhere; None for the lazy default."""
        from dcwatch.adapters import aws

        return aws.client(service, region=self.settings.home_region) if self.settings.home_region else None

    @cached_property
    def secrets(self) -> SecretsManagerCredentials:
        from dcwatch.adapters.secrets import SecretsManagerCredentials

        return SecretsManagerCredentials(self._home_client("secretsmanager"))

    @cached_property
    def events(self) -> EventBridgePublisher:
        from dcwatch.adapters.eventbridge import EventBridgePublisher

        return EventBridgePublisher(self.settings.bus_name, self._home_client("events"))

    @cached_property
    def _dynamodb(self) -> Any:
        """One client for the state, lock and idempotency tables: each client takes tens of ms to make."""
        from dcwatch.adapters import aws

        return aws.client("dynamodb")

    @cached_property
    def store(self) -> DynamoStateStore:
        from dcwatch.adapters.dynamodb import DynamoStateStore

        return DynamoStateStore(self.settings.table_name, self.settings.audit_table_name, self._dynamodb)

    @cached_property
    def leases(self) -> DynamoLeases:
        from dcwatch.adapters.dynamodb import DynamoLeases

        return DynamoLeases(self.settings.locks_table_name, self._dynamodb)

    @cached_property
    def site_leases(self) -> SiteLeaseTable:
        """The site agents' leases (same locks table as the failover lock, keys `site-lease#<site>`)."""
        from dcwatch.adapters.agent_aws import SiteLeaseTable

        return SiteLeaseTable(self.settings.locks_table_name, self._dynamodb)

    @cached_property
    def dns(self) -> Route53Dns:
        from dcwatch.adapters.route53 import Route53Dns

        return Route53Dns(resolver=self.settings.dns_resolver, zone_ids=self.settings.hosted_zone_ids)

    @cached_property
    def once(self) -> IdempotentSteps:
        from dcwatch.adapters.idempotency import IdempotentSteps

        return IdempotentSteps(self.settings.idempotency_table_name, self._dynamodb)

    @cached_property
    def hooks(self) -> DeferredHooks:
        return DeferredHooks(lambda secret_id: self.secrets.headers(secret_id))

    @cached_property
    def notifier(self) -> SnsNotifier:
        from dcwatch.adapters.sns import SnsNotifier

        return SnsNotifier(self.settings.topic_arn)

    @cached_property
    def reports(self) -> S3Reports | None:
        """The report bucket's writer; None where the stack has none (the local runtime writes files)."""
        if not self.settings.reports_bucket:
            return None
        from dcwatch.adapters.reports import S3Reports

        return S3Reports(self.settings.reports_bucket)

    @cached_property
    def approvals(self) -> Approvals:
        from dcwatch.adapters.stepfunctions import Approvals

        return Approvals()

    @cached_property
    def workflows(self) -> StepFunctionsStarter:
        from dcwatch.adapters.stepfunctions import StepFunctionsStarter

        return StepFunctionsStarter(self.settings.state_machine_arn)

    def probe(
        self, checks: list[PlannedCheck], round_id: str, deadline_s: float | None = None, vantage: str | None = None
    ) -> list[ProbeResult]:
        """One round of `checks` from this vantage point (or the one the local runtime says it plays)."""
        from dcwatch.adapters.probers import probe_round

        return probe_round(
            checks,
            self.secrets.get,
            headers=self.secrets.headers,
            vantage=vantage or self.vantage,
            round_id=round_id,
            deadline_s=deadline_s,
        )

    @contextmanager
    def inventory(self, site: str) -> Iterator[VsphereInventory]:
        """The site's vCenter, over the session this warm environment logged in with before, if still valid."""
        from dcwatch.adapters.vsphere import VsphereInventory

        vcenter = self.config.site(site).vcenter
        with VsphereInventory.reused(vcenter, self.secrets.get(vcenter.credentials_secret)) as inventory:
            yield inventory

    @contextmanager
    def drill_lab(self, site: str) -> Iterator[VsphereDrillLab]:
        """The site's vCenter as a drill's lab (clones of its standby VMs), over the same reused session."""
        from dcwatch.adapters.vsphere import VsphereDrillLab

        with self.inventory(site) as inventory:
            yield VsphereDrillLab(inventory)


class DeferredHooks:
    """The hook caller, imported (aiohttp with it) when a hook first runs: most groups of a plan have none."""

    def __init__(self, headers: Callable[[str], dict[str, str]]) -> None:
        self._headers = headers
        self._caller: HookCaller | None = None

    def run(self, hook: Hook, payload: Mapping[str, Any]) -> HookResult:
        if self._caller is None:
            from dcwatch.adapters.hooks import HookCaller

            self._caller = HookCaller(headers=self._headers)
        return self._caller.run(hook, payload)


_app: App | None = None
# Locally several functions share one process, each with its own environment (e.g. one probe per vantage point).
_scoped: ContextVar[App | None] = ContextVar("dcwatch_app", default=None)


def app() -> App:
    """The App of the running function; reused across invocations of a warm Lambda environment."""
    global _app
    scoped = _scoped.get()
    if scoped is not None:
        return scoped
    if _app is None:
        _app = App(Settings.from_env())
    return _app


@contextmanager
def scoped(instance: App) -> Iterator[App]:
    """Run the code inside as the function that `instance` belongs to (the local runtime's functions)."""
    token = _scoped.set(instance)
    try:
        yield instance
    finally:
        _scoped.reset(token)


def import_adapters() -> None:
    """Import every adapter now, for an environment Lambda initializes ahead of need (provisioned concurrency):
    nobody waits for it then, and its first invocation imports nothing."""
    import importlib
    import pkgutil

    from dcwatch import adapters

    for module in pkgutil.iter_modules(adapters.__path__):
        importlib.import_module(f"{adapters.__name__}.{module.name}")


def reset() -> None:
    """Forget the App, e.g. after the local runtime or a test changed the environment."""
    global _app
    _app = None
