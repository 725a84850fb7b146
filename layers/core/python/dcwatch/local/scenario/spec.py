"""A scenario file: its steps (faults at +t seconds after the steady phase) and the outcome it expects, loaded
and checked against the config it runs under."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcwatch.config import Config, Name
from dcwatch.local.faults import Mode
from dcwatch.local.links import PathRef, between, vpc_vantage
from dcwatch.recovery.fencing import ProofKind
from dcwatch.wiring import REPO_ROOT

SCENARIOS_DIR = REPO_ROOT / "scenarios"
# The first word of a subject that is one of these names its kind.
# VANTAGE: about a vantage point and no other kind, i.e. it sees the sites again (`[dcwatch] vantage point
# aws-public sees the sites again`).
VANTAGE = "VANTAGE"
AlertKind = Literal[
    "SERVICE",
    "VCENTER",
    "APPROVAL",
    "FAILOVER",
    "REFUSED",
    "ISOLATED",
    "VANTAGE",
    "FLAPPING",
    "RECOVERED",
    "DOWN",
    "PARTITIONED",
    "PARTITION_OVER",
    "AGENT_SILENT",
    "AGENT_BACK",
    "DRILL",
]
ALERT_KINDS: tuple[str, ...] = get_args(AlertKind)
MAX_S = 300


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SiteRef = Annotated[str, Field(description="'active', 'standby' or a site name")]


class ServiceAt(_Model):
    site: SiteRef
    service: str


class Flap(_Model):
    """The service stops and starts again every `every_s` seconds, `times` changes in all."""

    site: SiteRef
    service: str
    every_s: float = Field(ge=0.5, le=60)
    times: int = Field(ge=1, le=40)


VANTAGE_LINKS = (
    "a vantage point: the links of its placement, which the functions placed there share "
    "(aws-vpc: the VPC's, used by the workflow steps that talk to sites)"
)
PATH_DESCRIPTION = "public (the internet), private (the VPN into the site; the VPC only) or all"


class _Links(_Model):
    site: SiteRef = Field(default="all", description="a site, or 'all'")
    path: PathRef = Field(default="all", description=PATH_DESCRIPTION)


class NetworkFault(_Links):
    """What the links of one vantage point's placement towards a site (or every site) do to new connections."""

    vantage: str = Field(alias="from", description=VANTAGE_LINKS)
    mode: Mode = "pass"
    loss_pct: float = Field(default=0, ge=0, le=100, description="share of connections dropped")
    latency_s: float = Field(default=0, ge=0, le=30, description="added before each connection is forwarded")


class Cut(_Links):
    """No connection passes over some links: refused (the network answers there is no route) or blackholed
    (packets vanish, so every connection waits out its client's timeout)."""

    vantage: str = Field(alias="from", description=VANTAGE_LINKS)
    mode: Literal["refuse", "blackhole"] = "refuse"

    def fault(self) -> NetworkFault:
        return NetworkFault(vantage=self.vantage, site=self.site, path=self.path, mode=self.mode)


PARTIES = (
    "two of: aws (every AWS placement's paths to the site, and the site's agent uplink), customers (their path "
    "to the site's services), a site (active, standby, a name; all: both sites); two sites: the inter-site link"
)


class Partition(_Model):
    """Two parties lose every link between them: AWS and a site, the two sites, or the customers and a site."""

    between: list[str] = Field(min_length=2, max_length=2, description=PARTIES)
    mode: Literal["refuse", "blackhole"] = "refuse"


class Heal(_Links):
    """Links pass again: those of one vantage point's placement, those between two parties, or every link when
    neither is given."""

    vantage: str | None = Field(default=None, alias="from", description=VANTAGE_LINKS + "; unset: every link")
    between: list[str] | None = Field(default=None, min_length=2, max_length=2, description=PARTIES)

    @model_validator(mode="after")
    def _one_selection(self) -> Heal:
        if self.vantage is not None and self.between is not None:
            raise ValueError("heal names either `from` (a vantage point's links) or `between` (a partition), not both")
        return self


class Maintenance(_Model):
    site: SiteRef
    service: str | None = Field(default=None, description="one service; the whole site when unset")
    for_s: float = Field(gt=0, le=86400)


class _Manual(_Model):
    """A recovery started by hand, as `dcwatch failover` or `dcwatch drill` would start it."""

    from_site: SiteRef = Field(default="active", alias="from")
    to: SiteRef = "standby"
    reason: str = "scenario: manual trigger"


class ManualFailover(_Manual):
    count: int = Field(default=1, ge=1, le=5, description="this many requests at once (console and CLI racing)")


class ManualDrill(_Manual):
    """A drill started by hand: clones of the drill services' standby VMs proven on the isolated network."""

    reason: str = "scenario: drill"


class BusFault(_Model):
    duplicate: bool = Field(default=False, description="every ProbeRound delivered twice")
    late_s: int = Field(default=0, ge=0, le=15, description="and once more this many seconds later")


class EvaluatorCrash(_Model):
    times: int = Field(default=1, ge=1, le=3, description="evaluations that die as they would start the workflow")


ACTIONS = (
    "kill_site",
    "revive_site",
    "vcenter_down",
    "services_down",
    "stop_service",
    "start_service",
    "flap",
    "network",
    "cut",
    "vpn_down",
    "vantage_down",
    "isolate",
    "partition",
    "uplink_down",
    "heal",
    "kill_agent",
    "vcenter_refuses_login",
    "maintenance",
    "automation",
    "bus",
    "manual_failover",
    "manual_drill",
    "evaluator_crash",
)
# Steps that break something (or, for a manual failover, move something): the outcome is timed from the
# first of them. The others set the stage or undo: operator switches, a misbehaving bus, a crash armed,
# a service started, links healed, a drill (which moves nothing).
FAULTS = frozenset(ACTIONS) - {
    "revive_site",
    "start_service",
    "heal",
    "maintenance",
    "automation",
    "bus",
    "evaluator_crash",
    "manual_drill",
}


class Step(_Model):
    at: float = Field(ge=0, le=MAX_S, description="seconds after the steady phase")
    kill_site: SiteRef | None = Field(default=None, description="the site's vCenter and every service stop")
    revive_site: SiteRef | None = Field(
        default=None,
        description="a killed site's power returns: its vCenter runs with its VMs off, its agent starts again",
    )
    vcenter_down: SiteRef | None = Field(default=None, description="the site's vCenter stops; services run on")
    services_down: SiteRef | None = Field(
        default=None, description="every service of the site stops answering; its vCenter and VMs run on"
    )
    stop_service: ServiceAt | None = None
    start_service: ServiceAt | None = None
    flap: Flap | None = None
    network: NetworkFault | None = Field(default=None, description="links degraded: refused, lost, slowed")
    cut: Cut | None = Field(default=None, description="links cut")
    vpn_down: SiteRef | None = Field(
        default=None, description="the VPN into the site (or 'all') drops: the VPC's private path, probe and steps"
    )
    vantage_down: str | None = Field(
        default=None, description="a vantage point's placement loses every path to every site (refused)"
    )
    isolate: str | None = Field(default=None, description="the same as vantage_down")
    partition: Partition | None = Field(default=None, description="two parties lose every link between them")
    uplink_down: SiteRef | None = Field(
        default=None,
        description="the site's agent (or 'all': both) loses its uplink to AWS (DynamoDB, EventBridge): refused; "
        "AWS's own paths to the site stay",
    )
    kill_agent: SiteRef | None = Field(
        default=None, description="the site's agent process dies (SIGKILL); the site runs on"
    )
    vcenter_refuses_login: SiteRef | None = Field(
        default=None, description="the site's vCenter refuses every login (AWS's and its agent's); its VMs run on"
    )
    heal: Heal | None = Field(default=None, description="links pass again")
    maintenance: Maintenance | None = None
    automation: Literal["on", "off"] | None = None
    bus: BusFault | None = None
    manual_failover: ManualFailover | None = None
    manual_drill: ManualDrill | None = Field(
        default=None,
        description="a drill started by hand (mode drill): the drill services' clones, production untouched",
    )
    evaluator_crash: EvaluatorCrash | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [a for a in ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"a step needs exactly one of {', '.join(ACTIONS)}; got {given or 'none'}")
        return self

    @property
    def action(self) -> str:
        return next(a for a in ACTIONS if getattr(self, a) is not None)

    @property
    def is_fault(self) -> bool:
        return self.action in FAULTS

    def describe(self) -> str:
        value = getattr(self, self.action)
        shown = value.model_dump(by_alias=True, exclude_defaults=True) if isinstance(value, BaseModel) else value
        return f"{self.action} {shown}"


class Expect(_Model):
    failover: bool = Field(description="true: production moves to the standby exactly once; false: it never moves")
    down: list[SiteRef] | None = Field(default=None, description="sites the evaluator declares DOWN, in order")
    alerts: dict[AlertKind, int] = Field(default={}, description="alerts sent, by kind (kinds not named: any)")
    alerts_at_most: dict[AlertKind, int] = Field(
        default={}, description="alerts sent, by kind, no more than this (for counts that depend on timing)"
    )
    detected_within_s: float | None = Field(
        default=None, gt=0, description="the first DOWN at most this long after the first fault step"
    )
    self_fenced: list[SiteRef] = Field(
        default=[],
        description="sites whose agent fences its own site (each within lease_ttl_s of the first fault); every "
        "other agent must never fence",
    )
    lease_within_ttl: bool = Field(
        default=False,
        description="the failed site's lease stopped being renewed before its DOWN, and AWS could act on it at most "
        "lease_ttl_s after the DOWN (what the lease costs the recovery beyond detection, measured)",
    )
    fencing: ProofKind | None = Field(
        default=None,
        description="the fencing proof every failover that moved production rested on (`dcwatch.recovery.fencing`): "
        "vcenter (the failed site's vCenter powered its VMs off), lease (its lease expired and the standby's agent "
        "lost it), storage (its volumes offline), trust_quorum (none: the config trusts the quorum verdict)",
    )
    standby_dark: bool = Field(
        default=False,
        description="the standby's production endpoints never answer customers during the run "
        "(`summary.standby_answered_s`, sampled with both serving, is 0)",
    )
    drill: Literal["passed", "failed"] | None = Field(
        default=None,
        description="the outcome of every drill the steps start, from its audit record: passed (and cleaned up) "
        "or failed",
    )


class ScenarioSpec(_Model):
    name: Name
    description: str
    proves: str = Field(description="the rule the scenario holds the system to")
    config: str | None = Field(default=None, description="config file relative to this file; the demo's if unset")
    steady_s: float = Field(default=3, ge=0, le=60, description="normal operation before the steps")
    observe_s: float = Field(
        default=10, ge=0, le=MAX_S, description="after the last step, how long nothing more may happen"
    )
    max_s: float = Field(default=60, gt=0, le=MAX_S, description="hard bound on the run after the steady phase")
    steps: list[Step] = Field(min_length=1)
    expect: Expect
    source: str = Field(default="", exclude=True)

    @model_validator(mode="after")
    def _drills_to_judge(self) -> ScenarioSpec:
        if self.expect.drill is not None and not any(s.manual_drill for s in self.steps):
            raise ValueError("expect.drill judges the drills the steps start, and no step is a manual_drill")
        return self

    @property
    def last_step_at(self) -> float:
        return max(s.at + (s.flap.every_s * s.flap.times if s.flap else 0) for s in self.steps)


class ScenarioError(Exception):
    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file, self.problems = file, problems
        super().__init__("\n".join(f"{file}: {path}: {msg}" for path, msg in problems))


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def load_scenario(path: str | Path) -> ScenarioSpec:
    file = str(path)
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError(file, [("(file)", exc.strerror or str(exc))]) from None
    except yaml.YAMLError as exc:
        raise ScenarioError(file, [("(file)", f"not valid YAML: {exc}")]) from None
    if not isinstance(data, dict):
        raise ScenarioError(file, [("(top level)", "expected a mapping")])
    try:
        spec = ScenarioSpec.model_validate({**data, "source": file})
    except ValidationError as exc:
        raise ScenarioError(
            file, [(_path(e["loc"]), e["msg"].removeprefix("Value error, ")) for e in exc.errors()]
        ) from None
    return spec


def scenario_files(directory: Path = SCENARIOS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml"))


def config_path(spec: ScenarioSpec, default: Path) -> Path:
    return (Path(spec.source).parent / spec.config).resolve() if spec.config else default


def check_against(spec: ScenarioSpec, config: Config) -> None:
    """Every site, service and vantage point a step names exists in the config; else the file and path."""
    sites, services = {s.name for s in config.sites}, {s.name for s in config.services}
    problems: list[tuple[str, str]] = []

    def site(where: str, ref: str, allow_all: bool = False) -> None:
        known = {"active", "standby", *sites, *(["all"] if allow_all else [])}
        if ref not in known:
            problems.append((where, f"unknown site {ref!r}; known: {sorted(known)}"))

    topology = config.topology
    for i, step in enumerate(spec.steps):
        where, value = f"steps[{i}].{step.action}", getattr(step, step.action)
        if isinstance(value, str) and step.action in (
            "kill_site",
            "revive_site",
            "vcenter_down",
            "services_down",
            "kill_agent",
            "vcenter_refuses_login",
        ):
            site(where, value)
        if step.action == "kill_agent" and config.fencing is None:
            problems.append((where, "this config runs no site agents: add a `fencing` section"))
        if isinstance(value, Partition | Heal) and value.between is not None:
            try:
                between(topology, sorted(sites), *(resolve_site(config, p) for p in value.between))
            except ValueError as exc:
                problems.append((f"{where}.between", str(exc)))
        if step.action in ("vpn_down", "uplink_down"):
            site(where, value, allow_all=True)
        if step.action == "vpn_down" and vpc_vantage(topology) is None:
            problems.append((where, "this config deploys nothing inside a VPC, so there is no VPN: add `network`"))
        if step.action == "uplink_down" and config.fencing is None:
            problems.append((where, "this config runs no site agents, so no uplinks: add a `fencing` section"))
        if isinstance(value, (ServiceAt, Flap, Maintenance)):
            site(f"{where}.site", value.site)
            if value.service is not None and value.service not in services:
                problems.append((f"{where}.service", f"unknown service {value.service!r}; known: {sorted(services)}"))
        if isinstance(value, _Manual):
            site(f"{where}.from", value.from_site)
            site(f"{where}.to", value.to)
        if step.action == "manual_drill" and config.drill is None:
            problems.append((where, "this config has no `drill` section: nothing to drill"))
        vantage, path = (value, "all") if step.action in ("vantage_down", "isolate") else (None, "all")
        if isinstance(value, NetworkFault | Cut | Heal):
            site(f"{where}.site", value.site, allow_all=True)
            vantage, path = value.vantage, value.path
        if vantage is not None and vantage not in config.vantage_points:
            problems.append((where, f"unknown vantage point {vantage!r}; the config has {config.vantage_points}"))
        elif vantage is not None and path == "private" and not topology.vantage(vantage).placement.in_vpc:
            placement = topology.vantage(vantage).placement
            problems.append(
                (
                    f"{where}.path",
                    f"{vantage} runs in the {placement.describe()}: it has no private path (only code inside the "
                    "VPC reaches the sites over the VPN); say path: public or all",
                )
            )
    for i, ref in enumerate(spec.expect.down or []):
        site(f"expect.down[{i}]", ref)
    for i, ref in enumerate(spec.expect.self_fenced):
        site(f"expect.self_fenced[{i}]", ref)
    if (spec.expect.self_fenced or spec.expect.lease_within_ttl) and config.fencing is None:
        problems.append(("expect", "self_fenced and lease_within_ttl need site agents: add a `fencing` section"))
    if problems:
        raise ScenarioError(spec.source or spec.name, problems)


def resolve_site(config: Config, ref: str) -> str:
    """A site reference by name: active and standby as the config's sites, anything else (a site's name, 'all', a
    party of a partition) as written."""
    return {"active": config.active_site, "standby": config.other_site(config.active_site)}.get(ref, ref)
