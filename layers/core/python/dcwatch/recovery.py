"""Recovery requests and the plan they lead to.

A request names its mode (disaster, migration, drill, failback) and is checked against the config
before anything moves; the plan says, in order, what the mode shuts down or fences at the site it
leaves, which VMs it powers on (priority groups), and what every DNS record will point at afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcwatch.config import Config, RecoveryMode
from dcwatch.errors import InvalidRequest
from dcwatch.ports import RecordValues

MODE_WORDS: dict[str, str] = {
    "disaster": "failover",
    "migration": "planned migration",
    "drill": "drill",
    "failback": "failback",
}


class _Camel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Request(_Camel):
    from_site: str = Field(alias="from", description="the site to leave (a drill leaves it untouched)")
    to: str = Field(description="the site to bring up; not `from`")
    reason: str = Field(min_length=3, description="shown in the notification and the audit record")
    dry_run: bool = Field(
        default=False, alias="dryRun", strict=True, description="compute and announce the plan, change nothing"
    )
    incident_id: str | None = Field(default=None, alias="incidentId", pattern=r"^[A-Za-z0-9_-]{1,80}$")
    trigger: Literal["manual", "automatic"] = "manual"


class FailoverRequest(_Request):
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


class MigrationRequest(_Request):
    """Planned: shut the active site's VMs down gracefully (last group first), then bring up `to`."""

    mode: Literal["migration"]


class DrillRequest(_Request):
    """Prove the standby copies of the config's drill services; production is never touched."""

    mode: Literal["drill"]


class FailbackRequest(_Request):
    """Back to the original site (the config's `active_site`) once it is healthy, as a planned migration."""

    mode: Literal["failback"]
    trigger: Literal["manual"] = Field(default="manual", description="a failback is only ever started by hand")


REQUESTS: dict[str, type[_Request]] = {
    "DisasterRequest": DisasterRequest,
    "MigrationRequest": MigrationRequest,
    "DrillRequest": DrillRequest,
    "FailbackRequest": FailbackRequest,
}


class Record(_Camel):
    zone: str
    name: str
    type: str
    ttl: int
    values: list[str]

    def as_values(self) -> RecordValues:
        return RecordValues(self.zone, self.name, self.type, self.ttl, tuple(self.values))


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


def parse_request(raw: Any, config: Config, active_site: str | None = None) -> FailoverRequest:
    """The request, or InvalidRequest naming every problem in one readable sentence each.

    `active_site` (the recorded one, when known) lets the modes that depend on it refuse early:
    a migration leaves the active site, a failback returns to the original one, a drill never runs there.
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
        problems += _mode_problems(request, config, active_site)
    if problems or request is None:
        raise InvalidRequest("invalid recovery request: " + "; ".join(problems))
    return request


def _mode_problems(request: FailoverRequest, config: Config, active: str | None) -> list[str]:
    mode, source, target = request.mode, request.from_site, request.to
    problems = []
    if request.action is not None and mode != "disaster":
        problems.append(f"action: 'failover' is the old name of mode disaster; give mode {mode} alone")
    if mode == "failback":
        if request.trigger != "manual":
            problems.append("trigger: a failback is only ever started by hand; an automatic failback is refused")
        if target != config.active_site:
            problems.append(f"to: a failback returns to the original site {config.active_site}, not {target}")
    if mode in ("migration", "failback") and active is not None and source != active:
        problems.append(f"from: a {mode} leaves the active site, which is {active}, not {source}")
    if mode == "drill":
        if config.drill is None:
            problems.append("mode: drill needs a `drill:` section in the config naming the drill services")
        if active is not None and target == active:
            problems.append(f"to: {target} is the active site; a drill never touches production")
    return problems


def build_plan(config: Config, from_site: str, to_site: str, mode: RecoveryMode = "disaster") -> RecoveryPlan:
    drill = config.drill if mode == "drill" else None
    chosen = [d.name for d in drill.services] if drill else [s.name for s in config.services]
    services = [s for s in config.services if s.name in chosen]
    targets = {d.name: d.dns for d in drill.services} if drill else {s.name: s.dns for s in services}
    records = [
        Record(
            zone=targets[s.name].zone,
            name=targets[s.name].name,
            type=targets[s.name].type,
            ttl=targets[s.name].ttl,
            values=list(s.sites[to_site].dns_values),
        )
        for s in services
    ]
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
    lines += [f"power on at {plan.to}, group by group:"]
    lines += [f"  group {i}: {', '.join(vms)}" for i, vms in enumerate(plan.groups, start=1)]
    lines += [f"switch {r.name} ({r.type}) to {', '.join(r.values)}" for r in plan.records]
    if plan.mode == "drill":
        lines += ["then clean up, also after a failure: power off what the drill powered on, restore the drill records"]
    return lines


def default_reason(site: str, at: datetime) -> str:
    return f"{site} declared DOWN at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
