"""The recovery plan: what a mode shuts down or fences at the site it leaves, which VMs it powers on
(priority groups, their order, hooks and checks), and what every DNS record will point at afterwards."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dcwatch.config import Config, DnsRecord, Hook, RecoveryMode, Service
from dcwatch.config.hooks import group_hooks
from dcwatch.ports import RecordValues


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class RecordSet(_Camel):
    """One record set of a weighted or failover record, as the switch writes it."""

    set_identifier: str = Field(alias="setIdentifier")
    values: list[str]
    weight: int | None = None
    failover: Literal["PRIMARY", "SECONDARY"] | None = None


class Record(_Camel):
    zone: str
    name: str
    type: str
    ttl: int
    values: list[str] = Field(description="what the name answers after the switch")
    routing: Literal["simple", "weighted", "failover"] = "simple"
    sets: list[RecordSet] = Field(default=[], description="weighted, failover: every record set the switch writes")

    def as_values(self) -> RecordValues:
        return RecordValues(self.zone, self.name, self.type, self.ttl, tuple(self.values))

    def record_sets(self) -> list[RecordValues]:
        """What the switch UPSERTs: the record itself, or each of its record sets."""
        if not self.sets:
            return [self.as_values()]
        return [
            RecordValues(
                self.zone, self.name, self.type, self.ttl, tuple(s.values), s.set_identifier, s.weight, s.failover
            )
            for s in self.sets
        ]

    def describe(self) -> str:
        """`shop.example.com. -> 10.0.2.1 (weights: shop-b 100, shop-a 0)`, for the timeline."""
        values = "/".join(self.values)
        if self.routing == "weighted":
            sets = ", ".join(f"{s.set_identifier} {s.weight}" for s in self.sets)
            return f"{self.name} -> {values} (weights: {sets})"
        if self.routing == "failover":
            sets = ", ".join(f"{s.failover} {'/'.join(s.values)}" for s in self.sets)
            return f"{self.name} -> {values} ({sets})"
        return f"{self.name} -> {values}"


def service_record(record: DnsRecord, service: Service, serving: str, other: str) -> Record:
    """The record while `serving` serves: weighted, its set has its weight and the other's 0; failover, it is PRIMARY.

    A failover record's SECONDARY takes the other site's values; with no health check on the PRIMARY
    (dcwatch attaches none) Route 53 never answers it.
    """
    values = list(service.sites[serving].dns_values)
    sets = []
    if record.routing == "weighted" and record.weighted:
        sets = [
            RecordSet(
                set_identifier=record.weighted[site].set_identifier,
                values=list(service.sites[site].dns_values),
                weight=record.weighted[site].weight if site == serving else 0,
            )
            for site in (serving, other)
        ]
    elif record.routing == "failover" and record.failover:
        sets = [
            RecordSet(set_identifier=record.failover.primary, values=values, failover="PRIMARY"),
            RecordSet(
                set_identifier=record.failover.secondary,
                values=list(service.sites[other].dns_values),
                failover="SECONDARY",
            ),
        ]
    return Record(
        zone=record.zone,
        name=record.name,
        type=record.type,
        ttl=record.ttl,
        values=values,
        routing=record.routing,
        sets=sets,
    )


def _routing_words(record: Record) -> str:
    if record.routing == "weighted":
        return ", weighted: " + ", ".join(f"{s.set_identifier} weight {s.weight}" for s in record.sets)
    if record.routing == "failover":
        return f", failover: {record.sets[0].set_identifier} PRIMARY" if record.sets else ", failover"
    return ""


def records_at(config: Config, serving: str) -> list[Record]:
    """Every service record while `serving` serves: what a fresh deployment starts from."""
    other = config.other_site(serving)
    return [service_record(s.dns, s, serving, other) for s in config.services]


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
    fenced_when: str | None = Field(
        default=None, alias="fencedWhen", description="the mirror check's condition that proves the other side fenced"
    )


class RecoveryPlan(_Camel):
    from_site: str = Field(alias="from")
    to: str
    mode: RecoveryMode = "disaster"
    groups: list[list[str]] = Field(description="VM names at `to`, by priority group, in order")
    records: list[Record]
    services: list[str]
    fence: list[str] = Field(default=[], description="VM names at the failed site, powered off before promotion")
    shutdown: list[list[str]] = Field(
        default=[], description="VM names at `from`, by priority group, last group first: shut down gracefully"
    )
    network: str | None = Field(default=None, description="a drill's isolated network, as the config names it")
    group_details: list[GroupPlan] = Field(default=[], alias="groupDetails", description="one per entry of groups")
    storage: StoragePlan | None = None

    def group(self, index: int) -> GroupPlan:
        return self.group_details[index] if index < len(self.group_details) else GroupPlan(timeout_s=600)


def build_plan(config: Config, from_site: str, to_site: str, mode: RecoveryMode = "disaster") -> RecoveryPlan:
    drill = config.drill if mode == "drill" else None
    chosen = [d.name for d in drill.services] if drill else [s.name for s in config.services]
    services = [s for s in config.services if s.name in chosen]
    targets = {d.name: d.dns for d in drill.services} if drill else {s.name: s.dns for s in services}
    storage = config.site(to_site).storage
    records = [service_record(targets[s.name], s, to_site, from_site) for s in services]
    leaving = [vm for s in services for vm in s.sites[from_site].vms]
    return RecoveryPlan(
        from_site=from_site,
        to=to_site,
        mode=mode,
        fence=sorted(vm.name for vm in leaving) if mode == "disaster" else [],
        shutdown=_by_group(leaving)[::-1] if mode in ("migration", "failback") else [],
        groups=_by_group([vm for s in services for vm in s.sites[to_site].vms]),
        records=records,
        services=[s.name for s in services],
        network=drill.network if drill else None,
        group_details=[_group_plan(config, to_site, g, chosen) for g in _group_numbers(services, to_site)],
        storage=StoragePlan(
            site=to_site,
            check=storage.check,
            max_lag_s=storage.max_lag_s,
            lag=storage.lag,
            promote_hook=storage.promote_hook,
            fenced_when=storage.fenced_when,
        )
        if storage and mode != "drill"
        else None,
    )


def _group_numbers(services: list[Any], site: str) -> list[int]:
    return sorted({vm.group for s in services for vm in s.sites[site].vms})


def _group_plan(config: Config, site: str, number: int, chosen: list[str]) -> GroupPlan:
    settings = config.site(site).priority_group(number)
    at_site = [(service, at) for service, at in config.services_at(site) if service.name in chosen]
    vms = [vm for _, at in at_site for vm in at.vms if vm.group == number]
    hooks = group_hooks(config, site, number, chosen).hooks_only()
    return GroupPlan(
        timeout_s=settings.timeout_s or config.workflow.group_timeout_s,
        after={vm.name: list(vm.after) for vm in vms if vm.after},
        power_only=sorted(vm.name for vm in vms if vm.ready == "power"),
        pre_hooks=hooks.pre,
        post_hooks=hooks.post,
        vm_pre_hooks=hooks.vm_pre,
        vm_post_hooks=hooks.vm_post,
        services=[service.name for service, at in at_site if at.vms and max(vm.group for vm in at.vms) == number],
    )


def _by_group(vms: list[Any]) -> list[list[str]]:
    by_group: dict[int, list[str]] = {}
    for vm in vms:
        by_group.setdefault(vm.group, []).append(vm.name)
    return [sorted(by_group[g]) for g in sorted(by_group)]


def describe_plan(plan: RecoveryPlan) -> list[str]:
    if plan.mode == "drill":
        lines = [f"drill of {', '.join(plan.services)} at {plan.to}; {plan.from_site} and production DNS untouched"]
        lines += [f"drill network (recorded): {plan.network}"] if plan.network else []
    elif plan.shutdown:
        lines = [f"shut down {plan.from_site} gracefully, last group first (power off after the timeout):"]
        lines += [f"  shutdown {i}: {', '.join(vms)}" for i, vms in enumerate(plan.shutdown, start=1)]
    elif plan.mode == "disaster":
        lines = [f"fence {plan.from_site} where its vCenter answers: power off {', '.join(plan.fence) or 'nothing'}"]
    else:
        lines = [f"nothing to shut down at {plan.from_site}"]
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
    lines += [f"switch {r.name} ({r.type}{_routing_words(r)}) to {', '.join(r.values)}" for r in plan.records]
    if plan.mode == "drill":
        lines += ["then clean up, also after a failure: power off what the drill powered on, restore the drill records"]
    return lines
