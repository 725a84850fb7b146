"""Recovery requests and the plan they lead to.

A request names its mode (disaster, migration, drill, failback) and is checked against the config
before anything moves; the plan says, in order, what the mode shuts down or fences at the site it
leaves, which VMs it powers on (priority groups), and what every DNS record will point at afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcwatch.config import MANUAL_PREFIX, Config, DnsRecord, Hook, RecoveryMode, Service
from dcwatch.config.hooks import group_hooks
from dcwatch.errors import InvalidRequest
from dcwatch.ports import Leases, RecordValues, StateStore

MODE_WORDS: dict[str, str] = {
    "disaster": "failover",
    "migration": "planned migration",
    "drill": "drill",
    "failback": "failback",
}


# A manual recovery's incident ids start with MANUAL_PREFIX: the evaluator's are `<site>-down-<time>`, and no
# site's name starts with it (the config refuses one), so a start by hand can never write into an incident the
# evaluator opened (its audit, its acknowledgement).


def manual_incident(execution: str) -> str:
    """The incident of a manual start that names none: its execution's name, in the manual namespace."""
    return execution if execution.startswith(MANUAL_PREFIX) else f"{MANUAL_PREFIX}{execution}"


def incident_of(incident_id: object, execution: str) -> str:
    """The incident a finished execution's records go under: its input's `incidentId` where that can be its own
    (the evaluator names its execution after its incident; a manual one is in the manual namespace), else its
    name in the manual namespace, as the workflow would have named it."""
    if (
        isinstance(incident_id, str)
        and incident_id
        and (incident_id == execution or incident_id.startswith(MANUAL_PREFIX))
    ):
        return incident_id
    return manual_incident(execution)


@dataclass(frozen=True)
class Origin:
    """Who started an execution, as far as records a caller of StartExecution cannot write tell: before it
    starts a failover, the evaluator records the site's DOWN incident and takes the lock under that same name,
    the execution's. The state machine knows its execution's name, nothing of its caller."""

    execution: str
    store: StateStore  # the evaluator's record of each site: its status, its incident
    leases: Leases  # the failover lock

    def recorded_incident(self, site: str) -> str | None:
        """The incident the evaluator records for `site` while it records it DOWN."""
        condition = self.store.condition(f"site/{site}", "UP")
        return condition.incident_id if condition.status == "DOWN" else None

    def lock_owner(self) -> str | None:
        lease = self.leases.holder()
        return lease.owner if lease is not None else None


def leaving_site(mode: RecoveryMode, from_site: str) -> str | None:
    """The site a recovery moves production away from: every mode but a drill, which never touches it."""
    return None if mode == "drill" else from_site


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, defer_build=True)


class _Request(_Camel):
    from_site: str = Field(alias="from", description="the site to leave (a drill leaves it untouched)")
    to: str = Field(description="the site to bring up; not `from`")
    reason: str = Field(min_length=3, description="shown in the notification and the audit record")
    dry_run: bool = Field(
        default=False, alias="dryRun", strict=True, description="compute and announce the plan, change nothing"
    )
    incident_id: str | None = Field(
        default=None,
        alias="incidentId",
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description=f"a manual start's starts with {MANUAL_PREFIX!r}; left out, the execution's name is used",
    )
    trigger: Literal["manual", "automatic"] = Field(
        default="manual",
        description="automatic: the evaluator's own start only (the workflow checks it against the evaluator's "
        "records and the lock); anything else is manual",
    )
    force: bool = Field(
        default=False,
        strict=True,
        description="promote the standby storage even beyond the data-loss window; the run then waits for approval",
    )


class _Planned(_Request):
    lower_ttl_s: int | None = Field(
        default=None,
        alias="lowerTtlSeconds",
        ge=1,
        le=3600,
        strict=True,
        description="migration, failback: first lower the records' TTL to this and wait out the old TTL, "
        "so clients follow the DNS switch within this many seconds",
    )


class FailoverRequest(_Planned):
    """The workflow input, any mode: from the evaluator (disaster, automatic) or an operator."""

    mode: RecoveryMode
    action: Literal["failover"] | None = Field(
        default=None, description="deprecated: the input before modes; `failover` reads as mode disaster"
    )

    @model_validator(mode="before")
    @classmethod
    def _action_means_disaster(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("action") == "failover" and "mode" not in data:
            return {**{k: v for k, v in data.items() if k != "action"}, "mode": "disaster"}
        return data


class DisasterRequest(_Request):
    """Fence the failed site where its vCenter answers, power on the standby, verify, switch DNS."""

    mode: Literal["disaster"]


class MigrationRequest(_Planned):
    """Planned: shut the active site's VMs down gracefully (last group first), then bring up `to`."""

    mode: Literal["migration"]


class DrillRequest(_Request):
    """Prove the standby copies of the config's drill services; production is never touched."""

    mode: Literal["drill"]


class FailbackRequest(_Planned):
    """Back to the original site (the config's `active_site`) once it is healthy, as a planned migration."""

    mode: Literal["failback"]
    trigger: Literal["manual"] = Field(default="manual", description="a failback is only ever started by hand")


REQUESTS: dict[str, type[_Request]] = {
    "DisasterRequest": DisasterRequest,
    "MigrationRequest": MigrationRequest,
    "DrillRequest": DrillRequest,
    "FailbackRequest": FailbackRequest,
}


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


def parse_request(
    raw: Any,
    config: Config,
    active_site: str | None = None,
    site_status: Callable[[str], str] | None = None,
    origin: Origin | None = None,
) -> FailoverRequest:
    """The request, or InvalidRequest naming every problem in one readable sentence each.

    `active_site` (the recorded one, when known) lets the modes that depend on it refuse early:
    a disaster, migration or failback leaves the active site, a drill never runs there.
    `site_status` (the evaluator's record, when known): a failback returns only to a site UP again.
    `origin` (the workflow's ValidateRequest always has it): only the evaluator's own start is automatic.
    """
    if not isinstance(raw, dict):
        raise InvalidRequest("request must be a JSON object with mode, from, to, reason")
    problems: list[str] = []
    try:
        request: FailoverRequest | None = FailoverRequest.model_validate(raw)
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
        problems.append(f"from and to are both {raw.get('from')!r}; a recovery needs two different sites")
    if request is not None and not problems:
        problems += _mode_problems(request, config, active_site, site_status)
        problems += _origin_problems(request, origin)
    if problems or request is None:
        raise InvalidRequest("invalid recovery request: " + "; ".join(problems))
    return request


def _mode_problems(
    request: FailoverRequest, config: Config, active: str | None, site_status: Callable[[str], str] | None = None
) -> list[str]:
    mode, source, target = request.mode, request.from_site, request.to
    problems = []
    if request.action is not None and mode != "disaster":
        problems.append(f"action: 'failover' is the old name of mode disaster; give mode {mode} alone")
    if mode == "failback":
        if request.trigger != "manual":
            problems.append("trigger: a failback is only ever started by hand; an automatic failback is refused")
        if target != config.active_site:
            problems.append(f"to: a failback returns to the original site {config.active_site}, not {target}")
        elif site_status is not None and (status := site_status(target)) != "UP":
            problems.append(
                f"to: {target} is {status} by the evaluator's record; a failback returns only to a site that is "
                "healthy again: wait for its RECOVERED alert"
            )
    if request.lower_ttl_s is not None:
        problems += _ttl_problems(request.lower_ttl_s, mode, config)
    if mode != "drill" and active is not None and source != active:
        problems.append(f"from: a {mode} leaves the active site, which is {active}, not {source}")
    if mode == "drill":
        if config.drill is None:
            problems.append("mode: drill needs a `drill:` section in the config naming the drill services")
        if active is not None and target == active:
            problems.append(f"to: {target} is the active site; a drill never touches production")
    return problems


def _origin_problems(request: FailoverRequest, origin: Origin | None) -> list[str]:
    """A start by hand claims neither the evaluator's trigger nor one of its incidents."""
    incident = request.incident_id
    if request.trigger == "manual":
        if incident is not None and not incident.startswith(MANUAL_PREFIX):
            return [
                f"incidentId: a recovery started by hand has its own incident, starting with {MANUAL_PREFIX!r}, "
                f"not {incident!r} (it could be another incident's); leave it out to get one"
            ]
        return []
    if origin is None:
        return []
    recorded = origin.recorded_incident(request.from_site)
    owner = origin.lock_owner()
    if request.mode == "disaster" and incident == origin.execution == recorded == owner:
        return []
    seen = f"the evaluator records {recorded or 'no incident'} for {request.from_site}, the lock is held by " + (
        owner or "nobody"
    )
    return [
        f"trigger: 'automatic' is the evaluator's own start (its incident {request.from_site} DOWN, its lock, "
        f"the execution named after it); execution {origin.execution} with incidentId {incident} is not: {seen}. "
        "Start it by hand without a trigger"
    ]


def _ttl_problems(ttl_s: int, mode: RecoveryMode, config: Config) -> list[str]:
    if mode not in ("migration", "failback"):
        return [f"lowerTtlSeconds: only a planned migration or a failback lowers the TTL first, not a {mode}"]
    longest = max((s.dns.ttl for s in config.services), default=0)
    room = config.workflow.lease_s - 60
    if longest > room:
        return [
            f"lowerTtlSeconds: waiting out the records' TTL of {longest} s would outlast the lock "
            f"(workflow.lease_s {config.workflow.lease_s} less 60 s); lower the TTL by hand beforehand"
        ]
    return []


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


def default_reason(site: str, at: datetime) -> str:
    return f"{site} declared DOWN at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
