"""Failover requests and the recovery plan they lead to.

A request is checked against the config before anything moves; the plan says, in order, which VMs
the standby powers on (priority groups), and what every DNS record will point at afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dcwatch.config import Config, Hook
from dcwatch.errors import InvalidRequest
from dcwatch.ports import RecordValues


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class FailoverRequest(_Camel):
    """The documented workflow input, from the evaluator or an operator."""

    action: Literal["failover"]
    from_site: str = Field(alias="from")
    to: str
    reason: str = Field(min_length=3)
    dry_run: bool = Field(default=False, alias="dryRun", strict=True)
    incident_id: str | None = Field(default=None, alias="incidentId", pattern=r"^[A-Za-z0-9_-]{1,80}$")
    trigger: Literal["manual", "automatic"] = "manual"
    force: bool = Field(
        default=False, strict=True, description="promote the standby storage even beyond the data-loss window"
    )


class Record(_Camel):
    zone: str
    name: str
    type: str
    ttl: int
    values: list[str]

    def as_values(self) -> RecordValues:
        return RecordValues(self.zone, self.name, self.type, self.ttl, tuple(self.values))


class GroupPlan(_Camel):
    """How one priority group comes up: its deadline, the order inside it, its hooks and its checks."""

    timeout_s: int = Field(alias="timeoutS")
    after: dict[str, list[str]] = Field(default={}, description="VM -> VMs of the group it waits for")
    power_only: list[str] = Field(default=[], alias="powerOnly", description="VMs up when on (no guest to wait for)")
    pre_hooks: list[Hook] = Field(default=[], alias="preHooks")
    post_hooks: list[Hook] = Field(default=[], alias="postHooks")
    vm_pre_hooks: dict[str, list[Hook]] = Field(default={}, alias="vmPreHooks")
    vm_post_hooks: dict[str, list[Hook]] = Field(default={}, alias="vmPostHooks")
    services: list[str] = Field(default=[], description="services complete with this group: their checks must pass")


class StoragePlan(_Camel):
    site: str
    check: str
    max_lag_s: int = Field(alias="maxLagS")
    lag: str
    promote_hook: Hook | None = Field(default=None, alias="promoteHook")


class RecoveryPlan(_Camel):
    from_site: str = Field(alias="from")
    to: str
    groups: list[list[str]] = Field(description="VM names at the standby, by priority group, in order")
    records: list[Record]
    services: list[str]
    fence: list[str] = Field(default=[], description="VM names at the failed site, powered off before promotion")
    group_details: list[GroupPlan] = Field(default=[], alias="groupDetails", description="one per entry of groups")
    storage: StoragePlan | None = None

    def group(self, index: int) -> GroupPlan:
        return self.group_details[index] if index < len(self.group_details) else GroupPlan(timeout_s=600)


def parse_request(raw: Any, config: Config) -> FailoverRequest:
    """The request, or InvalidRequest naming every problem in one readable sentence each."""
    if not isinstance(raw, dict):
        raise InvalidRequest("request must be a JSON object with action, from, to, reason")
    problems: list[str] = []
    try:
        request = FailoverRequest.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "request"
            problems.append(f"{field}: {err['msg']}")
        request = None
    sites = [s.name for s in config.sites]
    for field in ("from", "to"):
        value = raw.get(field)
        if isinstance(value, str) and value not in sites:
            problems.append(f"{field}: unknown site {value!r}; known sites: {', '.join(sites)}")
    if raw.get("from") is not None and raw.get("from") == raw.get("to"):
        problems.append(f"from and to are both {raw.get('from')!r}; a failover needs two different sites")
    if problems or request is None:
        raise InvalidRequest("invalid failover request: " + "; ".join(problems))
    return request


def build_plan(config: Config, from_site: str, to_site: str) -> RecoveryPlan:
    by_group: dict[int, list[str]] = {}
    for _, at_site in config.services_at(to_site):
        for vm in at_site.vms:
            by_group.setdefault(vm.group, []).append(vm.name)
    site = config.site(to_site)
    storage = site.storage
    records = [
        Record(
            zone=service.dns.zone,
            name=service.dns.name,
            type=service.dns.type,
            ttl=service.dns.ttl,
            values=list(service.sites[to_site].dns_values),
        )
        for service in config.services
    ]
    return RecoveryPlan(
        from_site=from_site,
        to=to_site,
        fence=sorted(vm.name for _, at_site in config.services_at(from_site) for vm in at_site.vms),
        groups=[sorted(by_group[g]) for g in sorted(by_group)],
        records=records,
        services=[s.name for s in config.services],
        group_details=[_group_plan(config, to_site, g) for g in sorted(by_group)],
        storage=StoragePlan(
            site=to_site,
            check=storage.check,
            max_lag_s=storage.max_lag_s,
            lag=storage.lag,
            promote_hook=storage.promote_hook,
        )
        if storage
        else None,
    )


def _group_plan(config: Config, site: str, number: int) -> GroupPlan:
    settings = config.site(site).priority_group(number)
    vms = [vm for _, at in config.services_at(site) for vm in at.vms if vm.group == number]
    return GroupPlan(
        timeout_s=settings.timeout_s or config.workflow.group_timeout_s,
        after={vm.name: list(vm.after) for vm in vms if vm.after},
        power_only=sorted(vm.name for vm in vms if vm.ready == "power"),
        pre_hooks=settings.pre_power_on,
        post_hooks=settings.post_power_on,
        vm_pre_hooks={vm.name: vm.pre_power_on for vm in vms if vm.pre_power_on},
        vm_post_hooks={vm.name: vm.post_power_on for vm in vms if vm.post_power_on},
        services=[
            service.name
            for service, at in config.services_at(site)
            if at.vms and max(vm.group for vm in at.vms) == number
        ],
    )


def describe_plan(plan: RecoveryPlan) -> list[str]:
    lines = [f"fence {plan.from_site} where its vCenter answers: power off {', '.join(plan.fence) or 'nothing'}"]
    if plan.storage:
        promote = f", then {plan.storage.promote_hook.name} promotes it" if plan.storage.promote_hook else ""
        lines += [
            f"check the storage mirror at {plan.to} ({plan.storage.check}): at most {plan.storage.max_lag_s} s "
            f"behind{promote}"
        ]
    lines += [f"power on at {plan.to}, group by group:"]
    for i, vms in enumerate(plan.groups, start=1):
        detail = plan.group(i - 1)
        order = "; ".join(f"{vm} after {', '.join(deps)}" for vm, deps in sorted(detail.after.items()))
        lines += [f"  group {i}: {', '.join(vms)}" + (f" ({order})" if order else "")]
    lines += [f"switch {r.name} ({r.type}) to {', '.join(r.values)}" for r in plan.records]
    return lines


def default_reason(site: str, at: datetime) -> str:
    return f"{site} declared DOWN at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
