"""Recovery requests: what an operator or the evaluator may ask for, checked against the config.

A request names its mode (disaster, migration, drill, failback) and is checked before anything moves;
`plan` turns an accepted one into what the workflow does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcwatch.config import MANUAL_PREFIX, Config, RecoveryMode
from dcwatch.errors import InvalidRequest
from dcwatch.ports import Leases, StatusStore

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
    store: StatusStore  # the evaluator's record of each site: its status, its incident
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


def _sites_left_to_a_schedule(schema: dict[str, Any]) -> None:
    """The published schema as the workflow reads its input: a scheduled drill leaves out `from` and `to` (the
    workflow fills them in when it runs, `scheduled_sites`); every other request names both."""
    schema["required"] = [name for name in schema["required"] if name not in ("from", "to")]
    schema["if"] = {"not": {"properties": {"trigger": {"const": "scheduled"}}, "required": ["trigger"]}}
    schema["then"] = {"required": ["from", "to"]}


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
    trigger: Literal["manual", "automatic", "scheduled"] = Field(
        default="manual",
        description="automatic: the evaluator's own start only (the workflow checks it against the evaluator's "
        "records and the lock); scheduled: a drill the config's `drill.schedule` started, from and to left out "
        "(the active site and the other, when it runs); anything else is manual",
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

    model_config = ConfigDict(json_schema_extra=_sites_left_to_a_schedule)

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

    model_config = ConfigDict(json_schema_extra=_sites_left_to_a_schedule)

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
    raw = scheduled_sites(raw, config, active_site)
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


def scheduled_sites(raw: dict[str, Any], config: Config, active_site: str | None) -> dict[str, Any]:
    """A scheduled drill's from and to, read when it runs: from the active site (the recorded one, else the
    config's) to the other. One that names either keeps them, checked as any drill's are."""
    source = active_site or config.active_site
    if raw.get("trigger") != "scheduled" or "from" in raw or "to" in raw or len(config.sites) != 2:
        return raw
    if source not in [s.name for s in config.sites]:
        return raw
    return {**raw, "from": source, "to": config.other_site(source)}


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
    if request.trigger == "scheduled" and mode != "drill":
        problems.append(f"trigger: only a drill runs on a schedule, not a {mode}")
    if mode == "drill":
        if config.drill is None:
            problems.append("mode: drill needs a `drill:` section in the config naming the drill services")
        if active is not None and target == active:
            problems.append(f"to: {target} is the active site; a drill never touches production")
    return problems


def _origin_problems(request: FailoverRequest, origin: Origin | None) -> list[str]:
    """A start by hand claims neither the evaluator's trigger nor one of its incidents."""
    incident = request.incident_id
    if request.trigger in ("manual", "scheduled"):
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


def default_reason(site: str, at: datetime) -> str:
    return f"{site} declared DOWN at {at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
