"""Scenario files: a timeline of faults against the local runtime, and the outcome the decision rules owe.

A scenario (YAML, in `scenarios/`) names steps at +t seconds after its steady phase (kill a site, stop
a service, cut or degrade links of the deployed network, flip the automation switch, misdeliver events,
crash the evaluator, trigger failovers by hand) and what must follow: a failover or none, which sites
the evaluator declares DOWN, what the Fence step could do, and how many alerts of each kind. `judge`
compares that with what the run observed; `Player` applies the steps to a running `LocalPipeline`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dcwatch.config import Config, Name
from dcwatch.control import open_maintenance, switch_automation
from dcwatch.local.faults import Fault, Mode
from dcwatch.local.links import AnyLink, PathRef, SiteLink, between, select, vpc_vantage
from dcwatch.recovery.fencing import ProofKind
from dcwatch.wiring import REPO_ROOT

if TYPE_CHECKING:
    from dcwatch.local.pipeline import LocalPipeline

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


class ManualFailover(_Model):
    from_site: SiteRef = Field(default="active", alias="from")
    to: SiteRef = "standby"
    count: int = Field(default=1, ge=1, le=5, description="this many requests at once (console and CLI racing)")
    reason: str = "scenario: manual trigger"


class BusFault(_Model):
    duplicate: bool = Field(default=False, description="every ProbeRound delivered twice")
    late_s: int = Field(default=0, ge=0, le=15, description="and once more this many seconds later")


class EvaluatorCrash(_Model):
    times: int = Field(default=1, ge=1, le=3, description="evaluations that die as they would start the workflow")


ACTIONS = (
    "kill_site",
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
    "evaluator_crash",
)
# Steps that break something (or, for a manual failover, move something): the outcome is timed from the
# first of them. The others set the stage or undo: operator switches, a misbehaving bus, a crash armed,
# a service started, links healed.
FAULTS = frozenset(ACTIONS) - {"start_service", "heal", "maintenance", "automation", "bus", "evaluator_crash"}


class Step(_Model):
    at: float = Field(ge=0, le=MAX_S, description="seconds after the steady phase")
    kill_site: SiteRef | None = Field(default=None, description="the site's vCenter and every service stop")
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
                between(topology, sorted(sites), *(_party(config, p) for p in value.between))
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
        if isinstance(value, ManualFailover):
            site(f"{where}.from", value.from_site)
            site(f"{where}.to", value.to)
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


def _party(config: Config, ref: str) -> str:
    """A partition's party by name: active and standby as the config's sites, anything else as written."""
    return {"active": config.active_site, "standby": config.other_site(config.active_site)}.get(ref, ref)


class OperatorControls(Protocol):
    """What an operator switches by hand: the automation switch and maintenance windows."""

    def set_automation(self, enabled: bool) -> None: ...

    def add_maintenance(self, site: str, service: str | None, for_s: float) -> None: ...


class PipelineControls:
    """The operator's controls on the local runtime: the same audited functions the CLI calls."""

    BY = "scenario"

    def __init__(self, pipeline: LocalPipeline):
        self.pipeline = pipeline

    def set_automation(self, enabled: bool) -> None:
        switch_automation(self.pipeline.store, enabled, "a scenario step", self.BY, datetime.now(UTC))

    def add_maintenance(self, site: str, service: str | None, for_s: float) -> None:
        p = self.pipeline
        duration = timedelta(seconds=for_s)
        open_maintenance(p.store, p.config, site, service, duration, "a scenario step", self.BY, datetime.now(UTC))


def alert_kind(subject: str) -> str:
    """The alert's kind: the first word (or pair of words) of its subject that is one of ALERT_KINDS, else OTHER.
    `[dcwatch] DOWN dc-a (active): failover started` is a DOWN alert; `SERVICE DOWN shop` a SERVICE one.
    VANTAGE only when no other kind is named: `vantage point aws-vpc ISOLATED` is ISOLATED."""
    words = re.findall(r"[A-Za-z]+", subject.upper())
    # Two-word kinds first (`AGENT SILENT dc-a` is AGENT_SILENT), then one word.
    candidates = [f"{w}_{n}" for w, n in zip(words, words[1:], strict=False)]
    for position, word in enumerate(words):
        pair = candidates[position] if position < len(candidates) else ""
        if pair in ALERT_KINDS:
            return pair
        if word in ALERT_KINDS and word != VANTAGE:
            return word
    return VANTAGE if VANTAGE in words else "OTHER"


@dataclass
class Player:
    """Applies a scenario's steps to the pipeline at their times; flapping runs as its own bounded timer chain."""

    pipeline: LocalPipeline
    spec: ScenarioSpec
    log: Callable[[str, str], None]
    controls: OperatorControls | None = None
    errors: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def _controls(self) -> OperatorControls:
        return self.controls or PipelineControls(self.pipeline)

    def site(self, ref: str) -> str:
        config = self.pipeline.config
        return {"active": config.active_site, "standby": config.other_site(config.active_site)}.get(ref, ref)

    def schedule(self) -> list[tuple[float, Callable[[], None], str, bool]]:
        """(at, action, text, is_fault) sorted by time, flapping expanded into its stops and starts."""
        planned: list[tuple[float, Callable[[], None], str, bool]] = []
        for step in self.spec.steps:
            if step.flap is not None:
                flap = step.flap
                for n in range(flap.times):
                    stop = n % 2 == 0
                    planned.append(
                        (
                            step.at + n * flap.every_s,
                            self._service_action(flap.site, flap.service, stop),
                            f"flap: {flap.service} at {self.site(flap.site)} {'stops' if stop else 'starts'}",
                            True,
                        )
                    )
            else:
                planned.append((step.at, self._action(step), step.describe(), step.is_fault))
        return sorted(planned, key=lambda p: p[0])

    def _service_action(self, site: str, service: str, stop: bool) -> Callable[[], None]:
        services = self.pipeline.services
        if stop:
            return lambda: services.stop_service(self.site(site), service)
        return lambda: services.start_service(self.site(site), service)

    def _action(self, step: Step) -> Callable[[], None]:
        p = self.pipeline
        if step.kill_site is not None:
            return lambda: p.fail_site(self.site(step.kill_site or ""))
        if step.vcenter_down is not None:
            return lambda: p.stop_vcenter(self.site(step.vcenter_down or ""))
        if step.services_down is not None:
            return lambda: self._services_down(self.site(step.services_down or ""))
        if step.stop_service is not None:
            return self._service_action(step.stop_service.site, step.stop_service.service, True)
        if step.start_service is not None:
            return self._service_action(step.start_service.site, step.start_service.service, False)
        if step.network is not None:
            return lambda: self._network(step.network)  # type: ignore[arg-type]
        if step.cut is not None:
            return lambda: self._network(step.cut.fault())  # type: ignore[union-attr]
        if step.vpn_down is not None:
            vpc = vpc_vantage(p.config.topology) or ""
            return lambda: self._network(NetworkFault(vantage=vpc, site=step.vpn_down, path="private", mode="refuse"))
        if step.vantage_down is not None or step.isolate is not None:
            return lambda: self._network(NetworkFault(vantage=step.vantage_down or step.isolate, mode="refuse"))
        if step.partition is not None:
            return lambda: self._partition(step.partition)  # type: ignore[arg-type]
        if step.heal is not None:
            heal = step.heal
            if heal.between is not None:
                return lambda: p.network.heal(self.partitioned(heal.between or []))
            if heal.vantage is None and heal.site == "all" and heal.path == "all":
                return lambda: p.network.heal()  # every link, the sites' own (uplinks, inter-site, customers) too
            return lambda: p.network.heal(self.links(heal.vantage, heal.site, heal.path))
        if step.uplink_down is not None:
            return lambda: self._uplinks_down(step.uplink_down or "")
        if step.kill_agent is not None:
            return lambda: p.kill_agent(self.site(step.kill_agent or ""))
        if step.vcenter_refuses_login is not None:
            return lambda: p.refuse_vcenter_logins(self.site(step.vcenter_refuses_login or ""))
        if step.maintenance is not None:
            m = step.maintenance
            return lambda: self._controls.add_maintenance(self.site(m.site), m.service, m.for_s)
        if step.automation is not None:
            return lambda: self._controls.set_automation(step.automation == "on")
        if step.bus is not None:
            return lambda: self._bus(step.bus)  # type: ignore[arg-type]
        if step.manual_failover is not None:
            return lambda: self._manual(step.manual_failover)  # type: ignore[arg-type]
        if step.evaluator_crash is not None:
            crash = step.evaluator_crash
            return lambda: setattr(p.bus, "evaluator_crashes", crash.times)
        raise AssertionError(step.action)

    def partitioned(self, parties: list[str]) -> list[AnyLink]:
        config = self.pipeline.config
        one, other = (_party(config, p) for p in parties)
        return between(config.topology, [s.name for s in config.sites], one, other)

    def _partition(self, partition: Partition) -> None:
        applied = Fault(partition.mode)
        links = self.partitioned(partition.between)
        self.pipeline.network.set_faults(links, applied)
        self.log("links", f"{applied.describe()}: {', '.join(link.describe() for link in links)}")

    def _uplinks_down(self, ref: str) -> None:
        sites = [s.name for s in self.pipeline.config.sites] if ref == "all" else [self.site(ref)]
        links = [SiteLink(site, "uplink") for site in sites]
        self.pipeline.network.set_faults([*links], Fault("refuse"))
        self.log("links", f"refuse: {', '.join(link.describe() for link in links)}")

    def links(self, vantage: str | None, site: str, path: PathRef) -> list[AnyLink]:
        """The links of `vantage`'s placement (every placement when None) towards `site` ('all') on `path`."""
        config = self.pipeline.config
        sites = [s.name for s in config.sites]
        return [
            *select(config.topology, sites, vantage=vantage, site=None if site == "all" else self.site(site), path=path)
        ]

    def _network(self, fault: NetworkFault) -> None:
        applied = Fault(fault.mode, fault.loss_pct, fault.latency_s)
        links = self.links(fault.vantage, fault.site, fault.path)
        self.pipeline.network.set_faults(links, applied)
        self.log("links", f"{applied.describe()}: {', '.join(link.describe() for link in links)}")

    def _services_down(self, site: str) -> None:
        """Every service at the site stops answering, as crashed applications would; vCenter and VMs run on."""
        for service, _ in self.pipeline.config.services_at(site):
            self.pipeline.services.stop_service(site, service.name)

    def _bus(self, bus: BusFault) -> None:
        self.pipeline.bus.duplicate, self.pipeline.bus.late_s = bus.duplicate, bus.late_s

    def _manual(self, manual: ManualFailover) -> None:
        """`count` requests started at the same moment, as the console and the CLI would start them."""
        source, to = self.site(manual.from_site), self.site(manual.to)
        barrier = threading.Barrier(manual.count)

        def trigger(n: int) -> None:
            name = f"manual-{source}-{n + 1}"
            request = {
                "mode": "disaster",
                "from": source,
                "to": to,
                "reason": manual.reason,
                "dryRun": False,
                "trigger": "manual",
                "incidentId": name,
            }
            barrier.wait(timeout=5)
            try:
                self.manual.append(self.pipeline.start_failover(request, name))
            except Exception as exc:  # noqa: BLE001 - a refused trigger is an outcome, not a crash of the run
                self.errors.append(f"manual trigger {name}: {type(exc).__name__}: {exc}"[:200])

        threads = [threading.Thread(target=trigger, args=(n,), daemon=True) for n in range(manual.count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=10)


@dataclass(frozen=True)
class Verdict:
    scenario: str
    expected: str
    got: str
    passed: bool
    decision_passed: bool
    alerts_passed: bool
    failovers: int
    false_failovers: int
    missed_failovers: int
    detection_s: float | None
    detection_floor_s: float
    problems: tuple[str, ...] = ()
    both_serving_s: float = 0.0

    def row(self) -> dict[str, Any]:
        return {
            "both_serving_s": self.both_serving_s,
            "scenario": self.scenario,
            "expected": self.expected,
            "got": self.got,
            "detection_s": self.detection_s,
            "detection_floor_s": self.detection_floor_s,
            "false_failovers": self.false_failovers,
            "missed_failovers": self.missed_failovers,
            "passed": self.passed,
            "decision_passed": self.decision_passed,
            "alerts_passed": self.alerts_passed,
            "problems": list(self.problems),
        }


@dataclass
class Observed:
    """What a run saw, in the operator's terms."""

    down: list[str]  # sites declared DOWN, in order
    alerts: dict[str, int]
    failovers: int  # workflows that switched DNS (moved production)
    active_site: str
    detection_s: float | None
    errors: list[str]
    fencing: list[str] = field(default_factory=list)  # what each Fence and ProveFenced step reported
    proofs: dict[str, str] = field(default_factory=dict)  # execution that moved production -> its fencing proof
    both_serving_s: float = 0.0  # both sites answered customers at once this long (drill copies not counted)
    self_fenced: dict[str, float] = field(default_factory=dict)  # site -> its agent fenced it, s after the fault
    lease_cost_s: float | None = None  # AWS could act on the failed site's lease this long after its DOWN


def describe(failovers: int, down: list[str] | None, alerts: Mapping[str, int | str]) -> str:
    parts = [{0: "no failover", 1: "failover"}.get(failovers, f"{failovers} failovers")]
    if down is not None:
        parts.append("DOWN " + (",".join(down) if down else "none"))
    shown = " ".join(f"{k}={v}" for k, v in sorted(alerts.items()))
    if shown:
        parts.append("alerts " + shown)
    return "; ".join(parts)


def _expected_alerts(expect: Expect) -> dict[str, int | str]:
    exact: dict[str, int | str] = {str(k): v for k, v in expect.alerts.items()}
    return exact | {str(k): f"<={v}" for k, v in expect.alerts_at_most.items()}


def judge(spec: ScenarioSpec, config: Config, seen: Observed) -> Verdict:
    expect, standby = spec.expect, config.other_site(config.active_site)

    def site(ref: str) -> str:
        return {"active": config.active_site, "standby": standby}.get(ref, ref)

    moved = seen.failovers >= 1 and seen.active_site == standby
    expected_down = [site(s) for s in expect.down] if expect.down is not None else None
    problems: list[str] = list(seen.errors)
    if expect.failover and not moved:
        problems.append(f"no failover: {seen.failovers} workflows switched DNS, active site {seen.active_site}")
    if seen.failovers > (1 if expect.failover else 0):
        problems.append(f"{seen.failovers} workflows switched DNS")
    if expected_down is not None and seen.down != expected_down:
        problems.append(f"DOWN decisions {seen.down}, expected {expected_down}")
    if expect.fencing is not None and seen.failovers:
        used = sorted(set(seen.proofs.values()))
        if len(seen.proofs) < seen.failovers or used != [expect.fencing]:
            problems.append(f"fencing proofs {seen.proofs or 'none'} ({seen.fencing}), expected {expect.fencing}")
    expected_fenced = sorted(site(s) for s in expect.self_fenced)
    if sorted(seen.self_fenced) != expected_fenced:
        problems.append(f"agents fenced {sorted(seen.self_fenced) or 'nothing'}, expected {expected_fenced or 'none'}")
    ttl = config.fencing.lease_ttl_s if config.fencing else 0.0
    late = {s: t for s, t in seen.self_fenced.items() if s in expected_fenced and t > ttl}
    if late:
        problems.append(f"self-fenced later than lease_ttl_s ({ttl:g} s) after the fault: {late}")
    if expect.lease_within_ttl and (seen.lease_cost_s is None or seen.lease_cost_s > ttl):
        problems.append(f"lease cost beyond detection {seen.lease_cost_s} s, expected at most lease_ttl_s {ttl:g} s")
    if seen.both_serving_s > 0:
        problems.append(f"both sites served customers at once for {seen.both_serving_s:g} s")
    within = expect.detected_within_s
    if within is not None and (seen.detection_s is None or seen.detection_s > within):
        problems.append(f"detection {seen.detection_s} s, expected within {expect.detected_within_s:g} s")
    decision_ok = not problems
    alert_problems = [
        f"{kind} alerts: {seen.alerts.get(kind, 0)}, expected {n}"
        for kind, n in expect.alerts.items()
        if seen.alerts.get(kind, 0) != n
    ] + [
        f"{kind} alerts: {seen.alerts.get(kind, 0)}, expected at most {n}"
        for kind, n in expect.alerts_at_most.items()
        if seen.alerts.get(kind, 0) > n
    ]
    named = [*expect.alerts, *expect.alerts_at_most]
    got_alerts = {k: seen.alerts.get(k, 0) for k in named} | {k: v for k, v in seen.alerts.items() if v}
    return Verdict(
        scenario=spec.name,
        expected=describe(int(expect.failover), expected_down, _expected_alerts(expect)),
        got=describe(
            seen.failovers if moved or seen.failovers > 1 else 0,
            seen.down if expected_down is not None else None,
            got_alerts,
        ),
        passed=decision_ok and not alert_problems,
        decision_passed=decision_ok,
        alerts_passed=not alert_problems,
        failovers=seen.failovers,
        false_failovers=max(0, seen.failovers - (1 if expect.failover else 0)),
        missed_failovers=1 if expect.failover and not moved else 0,
        detection_s=seen.detection_s,
        detection_floor_s=config.probe.interval_s * config.thresholds.failures_to_down,
        problems=tuple(problems + alert_problems),
        both_serving_s=seen.both_serving_s,
    )
