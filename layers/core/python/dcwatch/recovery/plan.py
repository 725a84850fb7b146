"""The recovery plan: what a mode shuts down or fences at the site it leaves, which VMs it powers on
(priority groups, their order, hooks and checks), and what every DNS record will point at afterwards."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dcwatch.config import Config, DnsRecord, Hook, RecoveryMode, Service
from dcwatch.config.hooks import group_hooks
from dcwatch.config.workflow import Drill, clone_name
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


def service_record(
    record: DnsRecord, service: Service, serving: str, other: str, values: list[str] | None = None
) -> Record:
    """The record while `serving` serves: weighted, its set has its weight and the other's 0; failover, it is PRIMARY.

    A failover record's SECONDARY takes the other site's values; with no health check on the PRIMARY
    (dcwatch attaches none) Route 53 never answers it. `values`: a drill record's, the clones' drill addresses.
    """
    values = list(values or service.sites[serving].dns_values)
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


class DrillPlan(_Camel):
    """Where a drill works: clones of the standby VMs (clone name -> standby VM, in power-on order), made on the
    snapshot's datastore, isolated on `network`. The standby VMs themselves are only their sources."""

    run: str = Field(description="this drill's run: the clones' names end with it, and their mark carries it")
    network: str
    clones: dict[str, str]
    folder: str | None = None
    resource_pool: str | None = Field(default=None, alias="resourcePool")
    snapshot_hook: Hook | None = Field(default=None, alias="snapshotHook")
    snapshot_cleanup_hook: Hook | None = Field(default=None, alias="snapshotCleanupHook")
    clone_timeout_s: int = Field(default=600, alias="cloneTimeoutS")


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
    drill: DrillPlan | None = None
    group_details: list[GroupPlan] = Field(default=[], alias="groupDetails", description="one per entry of groups")
    storage: StoragePlan | None = None

    def group(self, index: int) -> GroupPlan:
        return self.group_details[index] if index < len(self.group_details) else GroupPlan(timeout_s=600)


# What a dry run shows for a drill's run, chosen when the drill starts.
PLACEHOLDER_RUN = "<run>"


def build_plan(
    config: Config, from_site: str, to_site: str, mode: RecoveryMode = "disaster", run: str = PLACEHOLDER_RUN
) -> RecoveryPlan:
    """What `mode` does from `from_site` to `to_site`; a drill's VMs are the clones of `run`."""
    drill = config.drill if mode == "drill" else None
    chosen = [d.name for d in drill.services] if drill else [s.name for s in config.services]
    services = [s for s in config.services if s.name in chosen]
    storage = config.site(to_site).storage
    leaving = [vm for s in services for vm in s.sites[from_site].vms]
    standby = [vm for s in services for vm in s.sites[to_site].vms]
    name = partial(clone_name, run=run) if drill else _same
    return RecoveryPlan(
        from_site=from_site,
        to=to_site,
        mode=mode,
        fence=sorted(vm.name for vm in leaving) if mode == "disaster" else [],
        shutdown=_by_group(leaving)[::-1] if mode in ("migration", "failback") else [],
        groups=[[name(vm) for vm in group] for group in _by_group(standby)],
        records=_drill_records(drill, services, to_site, from_site)
        if drill
        else [service_record(s.dns, s, to_site, from_site) for s in services],
        services=[s.name for s in services],
        drill=_drill_plan(drill, standby, run) if drill else None,
        group_details=[_group_plan(config, to_site, g, chosen, mode, name) for g in _group_numbers(services, to_site)],
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


def _same(vm: str) -> str:
    return vm


def _drill_records(drill: Drill, services: list[Service], serving: str, other: str) -> list[Record]:
    """The drill records, pointed at the clones' drill addresses."""
    by_name = {s.name: s for s in services}
    return [service_record(d.dns, by_name[d.name], serving, other, d.dns_values) for d in drill.services]


def _drill_plan(drill: Drill, standby: list[Any], run: str) -> DrillPlan:
    return DrillPlan(
        run=run,
        network=drill.network,
        clones={clone_name(vm, run): vm for group in _by_group(standby) for vm in group},
        folder=drill.folder,
        resource_pool=drill.resource_pool,
        snapshot_hook=drill.snapshot_hook,
        snapshot_cleanup_hook=drill.snapshot_cleanup_hook,
        clone_timeout_s=drill.clone_timeout_s,
    )


def _group_numbers(services: list[Any], site: str) -> list[int]:
    return sorted({vm.group for s in services for vm in s.sites[site].vms})


def _group_plan(
    config: Config, site: str, number: int, chosen: list[str], mode: RecoveryMode, name: Callable[[str], str]
) -> GroupPlan:
    """Group `number`'s deadline, order, hooks (those that run in `mode`) and checks, its VMs named by `name`
    (a drill's: their clones)."""
    settings = config.site(site).priority_group(number)
    at_site = [(service, at) for service, at in config.services_at(site) if service.name in chosen]
    vms = [vm for _, at in at_site for vm in at.vms if vm.group == number]
    hooks = group_hooks(config, site, number, chosen, mode).hooks_only()
    return GroupPlan(
        timeout_s=settings.timeout_s or config.workflow.group_timeout_s,
        after={name(vm.name): [name(dep) for dep in vm.after] for vm in vms if vm.after},
        power_only=sorted(name(vm.name) for vm in vms if vm.ready == "power"),
        pre_hooks=hooks.pre,
        post_hooks=hooks.post,
        vm_pre_hooks={name(vm): h for vm, h in hooks.vm_pre.items()},
        vm_post_hooks={name(vm): h for vm, h in hooks.vm_post.items()},
        services=[service.name for service, at in at_site if at.vms and max(vm.group for vm in at.vms) == number],
    )


def _by_group(vms: list[Any]) -> list[list[str]]:
    by_group: dict[int, list[str]] = {}
    for vm in vms:
        by_group.setdefault(vm.group, []).append(vm.name)
    return [sorted(by_group[g]) for g in sorted(by_group)]


def describe_plan(plan: RecoveryPlan) -> list[str]:
    if plan.drill:
        lines = [
            f"drill of {', '.join(plan.services)} at {plan.to}, on clones: {plan.from_site}, the standby VMs and "
            "production DNS untouched"
        ]
        hook = plan.drill.snapshot_hook
        lines += [f"present the replica's snapshot: {hook.name}"] if hook else []
        lines += [
            f"clone {len(plan.drill.clones)} standby VMs ({', '.join(plan.drill.clones.values())}) as "
            f"<vm>-drill-{plan.drill.run}, NICs moved to the isolated network {plan.drill.network} before power-on"
        ]
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
    lines += [f"power on {'the clones at' if plan.drill else 'at'} {plan.to}, group by group:"]
    for i, vms in enumerate(plan.groups, start=1):
        detail = plan.group(i - 1)
        order = "; ".join(f"{vm} after {', '.join(deps)}" for vm, deps in sorted(detail.after.items()))
        lines += [f"  group {i}: {', '.join(vms)}" + (f" ({order})" if order else "")]
    lines += [f"switch {r.name} ({r.type}{_routing_words(r)}) to {', '.join(r.values)}" for r in plan.records]
    if plan.drill:
        removal = (
            f", then {plan.drill.snapshot_cleanup_hook.name} removes the snapshot"
            if plan.drill.snapshot_cleanup_hook
            else ""
        )
        lines += [
            "then clean up, also after a failure: restore the drill records, power off and destroy the clones" + removal
        ]
    return lines
