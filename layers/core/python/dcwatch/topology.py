"""Who runs where and reaches what: vantage points, function placements and endpoints, from the config.

The one source of the deployed network: CDK builds the probes and the functions' VPC configs from it,
the local runtime's fault proxies let each vantage point and function reach exactly what it lists,
and the decision counts a vantage point only for the checks it runs. Pure: config in, model out.

- A vantage point runs a check when its placement reaches the check's endpoint: every placement
  reaches public endpoints; only code inside `network` reaches private ones (over the VPN or Direct
  Connect into the sites), and it reaches public ones through the VPC's NAT.
- Functions that talk to a site (`FunctionSpec.reaches_sites`) run inside `network` when there is one;
  the others only talk to AWS and stay outside any VPC.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from dcwatch.config import (
    VCENTER_PREFIX,
    Config,
    Reach,
    VCenter,
    rule_minimum,
)
from dcwatch.config.checks import check_address
from dcwatch.wiring import FUNCTIONS, STEPS

VANTAGE_PUBLIC = "aws-public"
VANTAGE_VPC = "aws-vpc"
VCENTER_PARTS = ("login", "hosts", "vms", "datastores", "alarms")


def vantage_of_region(region: str) -> str:
    return f"aws-{region}"


def vcenter_check_name(part: str) -> str:
    """`vcenter` for the login, `vcenter-<part>` for the rest: each part is a check with its own state."""
    return VCENTER_PREFIX if part == "login" else f"{VCENTER_PREFIX}-{part}"


@dataclass(frozen=True)
class Placement:
    """Where code runs: the home region or a second one, outside any VPC or inside `network`."""

    name: str
    region: str | None = None  # None: the home region
    in_vpc: bool = False

    @property
    def reaches(self) -> frozenset[Reach]:
        return frozenset({"public", "private"}) if self.in_vpc else frozenset({"public"})

    def describe(self) -> str:
        where = f"region {self.region}" if self.region else "home region"
        return f"{where}, {'inside the VPC' if self.in_vpc else 'outside any VPC'}"


HOME = Placement("home")
IN_VPC = Placement("vpc", in_vpc=True)


def region_placement(region: str) -> Placement:
    return Placement(f"region-{region}", region=region)


@dataclass(frozen=True)
class Endpoint:
    """One check's target at a site, as the network sees it."""

    site: str
    check: str  # the name results carry (`vcenter`, `vcenter-hosts`, ... for the vCenter's parts)
    service: str | None
    critical: bool
    reach: Reach
    address: str  # host:port (a DNS check: its resolver)
    field: str  # where the config declares it, e.g. services[0].sites.dc-a.checks[1]

    @property
    def key(self) -> tuple[str, str]:
        return self.site, self.check


@dataclass(frozen=True)
class VantagePoint:
    """A probe: where it runs and the checks it runs (those its placement reaches)."""

    name: str
    placement: Placement
    checks: frozenset[tuple[str, str]]  # (site, check)

    def runs(self, site: str, check: str) -> bool:
        return (site, check) in self.checks

    @cached_property
    def round_markers(self) -> frozenset[tuple[str, str]]:
        """One check per site it runs (the first by name): its result stands for this vantage point's round of
        that site, for what is judged once per round rather than per result (site agents' silence)."""
        sites = {site for site, _ in self.checks}
        return frozenset((site, min(c for s, c in self.checks if s == site)) for site in sites)


@dataclass(frozen=True)
class Topology:
    vantage_points: tuple[VantagePoint, ...]
    endpoints: tuple[Endpoint, ...]
    functions: tuple[tuple[str, Placement], ...]  # function key -> placement (probes: per vantage point)
    network: str | None = None  # the VPC id, when there is one
    # The drill clones' checks, at each site a drill may run at: run by the workflow's site steps in a drill,
    # never by a vantage point (the clones exist only during a drill, on the isolated network).
    drill_endpoints: tuple[Endpoint, ...] = ()

    @property
    def vantage_names(self) -> list[str]:
        return [v.name for v in self.vantage_points]

    def vantage(self, name: str) -> VantagePoint:
        for vantage in self.vantage_points:
            if vantage.name == name:
                return vantage
        raise KeyError(f"unknown vantage point {name!r}; this topology has {self.vantage_names}")

    def runners(self, site: str, check: str) -> list[str]:
        """The vantage points that run `check` at `site`, in deployment order."""
        return [v.name for v in self.vantage_points if v.runs(site, check)]

    def placement(self, key: str) -> Placement:
        """Where a function runs, or a workflow step: where the function that runs it does."""
        steps = {s.key: s.function for s in STEPS}
        return dict(self.functions)[steps.get(key, key)]

    def reaches(self, placement: Placement, endpoint: Endpoint) -> bool:
        return endpoint.reach in placement.reaches

    @cached_property
    def _by_key(self) -> dict[tuple[str, str], Endpoint]:
        return {e.key: e for e in self.endpoints}

    def endpoint(self, site: str, check: str) -> Endpoint:
        found = self._by_key.get((site, check))
        if found is None:
            raise KeyError(f"no check {check!r} at site {site!r}")
        return found

    def as_dict(self) -> dict[str, Any]:
        """Plain data, for `dcwatch topology --json` and the tests that compare it with the template."""
        return {
            "network": self.network,
            "vantagePoints": [
                {
                    "name": v.name,
                    "placement": v.placement.name,
                    "region": v.placement.region,
                    "inVpc": v.placement.in_vpc,
                    "checks": [f"{check}@{site}" for site, check in sorted(v.checks)],
                }
                for v in self.vantage_points
            ],
            "functions": {key: placement.name for key, placement in self.functions},
            "endpoints": [
                {
                    "site": e.site,
                    "check": e.check,
                    "service": e.service,
                    "critical": e.critical,
                    "reach": e.reach,
                    "address": e.address,
                    "field": e.field,
                    "runners": self.runners(e.site, e.check),
                }
                for e in self.endpoints
            ],
        }


def vcenter_parts(vcenter: VCenter) -> list[str]:
    """The parts of a vCenter check its config asks for; all are read in one session per round."""
    probe = vcenter.probe
    wanted = {"login": True, "hosts": probe.hosts, "vms": bool(probe.critical_vms), "datastores": True}
    wanted["alarms"] = probe.alarms
    return [part for part in VCENTER_PARTS if wanted[part]]


def _endpoints(config: Config) -> Iterator[Endpoint]:
    for i, site in enumerate(config.sites):
        for part in vcenter_parts(site.vcenter):
            name = vcenter_check_name(part)
            address = check_address(site.vcenter)
            yield Endpoint(site.name, name, None, part != "alarms", site.vcenter.reach, address, f"sites[{i}].vcenter")
        for j, check in enumerate(site.checks):
            reach: Reach = check.reach or "private"
            yield Endpoint(
                site.name, check.name, None, check.critical, reach, check_address(check), f"sites[{i}].checks[{j}]"
            )
    for i, service in enumerate(config.services):
        for site_name, at in service.sites.items():
            for j, check in enumerate(at.checks):
                yield Endpoint(
                    site_name,
                    check.name,
                    service.name,
                    check.critical,
                    check.reach or "public",
                    check_address(check),
                    f"services[{i}].sites.{site_name}.checks[{j}]",
                )


def _drill_endpoints(config: Config) -> Iterator[Endpoint]:
    services = {s.name: s for s in config.services}
    for i, drill in enumerate(config.drill.services if config.drill else []):
        service = services.get(drill.name)
        for site_name in [site for site, at in service.sites.items() if at.vms] if service else []:
            for j, check in enumerate(drill.checks):
                reach: Reach = check.reach or "private"
                address, field = check_address(check), f"drill.services[{i}].checks[{j}]"
                yield Endpoint(site_name, check.name, drill.name, check.critical, reach, address, field)


def deployed_vantages(config: Config) -> list[tuple[str, Placement]]:
    """The probes a deployment of this config runs: always one outside any VPC in the home region,
    one inside `network`, one in `secondary_region`."""
    deployed = [(VANTAGE_PUBLIC, HOME)]
    if config.network is not None:
        deployed.append((VANTAGE_VPC, IN_VPC))
    if config.secondary_region is not None:
        deployed.append((vantage_of_region(config.secondary_region), region_placement(config.secondary_region)))
    return deployed


def topology(config: Config) -> Topology:
    endpoints = tuple(_endpoints(config))
    vantages = tuple(
        VantagePoint(name, placement, frozenset(e.key for e in endpoints if e.reach in placement.reaches))
        for name, placement in deployed_vantages(config)
    )
    site_placement = IN_VPC if config.network is not None else HOME
    functions = tuple(
        (spec.key, site_placement if spec.reaches_sites else HOME) for spec in FUNCTIONS if spec.key != "Probe"
    )
    network = config.network.vpc_id if config.network else None
    return Topology(vantages, endpoints, functions, network, tuple(_drill_endpoints(config)))


def topology_problems(config: Config, model: Topology | None = None) -> list[str]:
    """A deployed network that cannot work: private endpoints nobody reaches, quorums no check can meet,
    a `probe.vantages` other than what is deployed. Each names the field and what to add."""
    model = model or topology(config)
    problems: list[str] = []
    deployed = model.vantage_names
    if config.probe.vantages and sorted(config.probe.vantages) != sorted(deployed):
        problems.append(
            f"probe.vantages: {list(config.probe.vantages)} but this config deploys {deployed} "
            f"({', '.join(f'{v.name} in the {v.placement.describe()}' for v in model.vantage_points)}): "
            "leave probe.vantages out, or add network / secondary_region to deploy the others"
        )
        return problems
    if config.network is None:
        for field in dict.fromkeys(e.field for e in model.endpoints if e.reach == "private"):
            problems.append(
                f"{field}.reach: private (the default for a vCenter and a site's own checks), but no `network` is "
                "configured, so nothing deployed reaches it: add `network` (the VPC with a route to the sites) "
                "or say `reach: public` if it answers on the internet"
            )
        if problems:
            return problems
    quorum = config.thresholds.effective_quorum
    for field, endpoints in _by_field(e for e in model.endpoints if e.critical and e.service is not None):
        check = endpoints[0]
        runners = model.runners(check.site, check.check)
        if len(runners) < quorum:
            problems.append(
                f"{field}: critical check {check.check} of {check.service} at {check.site} is run by "
                f"{len(runners)} vantage point{'s' if len(runners) != 1 else ''} ({', '.join(runners) or 'none'}) "
                f"but thresholds.quorum is {quorum}: the service could never be confirmed DOWN. "
                f"{_what_to_add(config, check.reach)}"
            )
    return problems + list(_site_visibility(config, model)) + _drill_reach_problems(config, model)


def _drill_reach_problems(config: Config, model: Topology) -> list[str]:
    if config.network is not None:
        return []
    return [
        f"{field}.reach: private (the default for a drill check: the drill network is isolated), but no `network` "
        "is configured, so no workflow step reaches the clones: add `network` (the VPC with a route to the drill "
        "network)"
        for field in dict.fromkeys(e.field for e in model.drill_endpoints if e.reach == "private")
    ]


def site_deciders(config: Config, model: Topology, site: str) -> list[str]:
    """The vantage points that could see `site` DOWN as the active site: those that run at least as many
    of its critical checks as `thresholds.site_rule` needs DOWN (one for `all` and `any`)."""
    deciding = [e.key for e in model.endpoints if e.site == site and e.critical]
    need = rule_minimum(config.thresholds.site_rule)
    return [v.name for v in model.vantage_points if sum(v.runs(*key) for key in deciding) >= max(1, need)]


def _site_visibility(config: Config, model: Topology) -> Iterator[str]:
    """A site that fewer than `quorum` vantage points could see DOWN under an `at_least N` site rule: aws-public
    runs only its public checks, so N may exceed what it sees. (With `all` or `any` the per-check rule above
    already names each check: every site has a critical service check, each service needs one there.)"""
    quorum, rule = config.thresholds.effective_quorum, config.thresholds.site_rule
    if rule_minimum(rule) <= 1:
        return
    for site in config.sites:
        deciders = site_deciders(config, model, site.name)
        if len(deciders) < quorum:
            seen_by = f"{len(deciders)} vantage point{'s' if len(deciders) != 1 else ''} ({', '.join(deciders)})"
            yield (
                f"thresholds.site_rule: {rule!r} but site {site.name} can be seen DOWN by {seen_by} and "
                f"thresholds.quorum is {quorum}: it could never be declared DOWN, so never failed over. Lower the "
                "rule to at most the critical checks every vantage point runs there (`dcwatch topology` lists them)"
            )


def _by_field(endpoints: Iterator[Endpoint]) -> list[tuple[str, list[Endpoint]]]:
    grouped: dict[str, list[Endpoint]] = {}
    for endpoint in endpoints:
        grouped.setdefault(endpoint.field, []).append(endpoint)
    return list(grouped.items())


def _what_to_add(config: Config, reach: Reach) -> str:
    if reach == "private":
        return (
            "Only the probe inside `network` reaches a private endpoint: say `reach: public` if customers reach "
            "it from the internet, or make it `severity: warning` (it still alerts, it does not decide)"
        )
    add = [] if config.network else ["network (a probe in the VPC)"]
    add += [] if config.secondary_region else ["secondary_region (a probe in a second region)"]
    return f"Add {' or '.join(add)}" if add else "Lower thresholds.quorum"


def mermaid(model: Topology, site_names: Sequence[str]) -> str:
    """The topology as a Mermaid flowchart: placements, vantage points, and which endpoints each reaches."""
    lines = ["flowchart LR"]
    for vantage in model.vantage_points:
        lines.append(f'  {_id(vantage.name)}["{vantage.name}<br/>{vantage.placement.describe()}"]')
    for site in site_names:
        lines.append(f"  subgraph {_id(site)}[{site}]")
        for reach in ("public", "private"):
            count = sum(1 for e in model.endpoints if e.site == site and e.reach == reach)
            if count:
                lines.append(f'    {_id(site + "-" + reach)}["{reach}: {count} checks"]')
        lines.append("  end")
    for vantage in model.vantage_points:
        for site in site_names:
            for reach in ("public", "private"):
                if reach in vantage.placement.reaches and any(
                    e.site == site and e.reach == reach for e in model.endpoints
                ):
                    link = "VPN/DX" if reach == "private" else "NAT" if vantage.placement.in_vpc else "internet"
                    lines.append(f"  {_id(vantage.name)} -->|{link}| {_id(site + '-' + reach)}")
    return "\n".join(lines) + "\n"


def _id(name: str) -> str:
    return name.replace("-", "_")


# The AWS APIs each function that runs in the VPC calls (the IAM table in infra/dcwatch_infra/stack.py
# grants the same): inside `network` each needs a NAT gateway or a VPC endpoint. None of them calls Step
# Functions (a task answers through Lambda's response) or CloudWatch (EMF metrics go out with the logs,
# which Lambda ships from outside the VPC).
# The AWS APIs each function that may run in the VPC calls, by IAM service prefix: what the VPC's NAT or
# endpoints must reach. The infrastructure tests hold it equal to the grants the stack gives each function.
AWS_CALLS: dict[str, tuple[str, ...]] = {
    "Probe": ("events", "secretsmanager", "xray"),
    # The workflow's site steps: vCenter secrets (the vCenter steps), Route 53 (a drill's records), DynamoDB
    # (CleanUpDrill's lock, ProveFenced's site leases, StartGroup's and CheckGroup's idempotency), Lambda hooks.
    "SiteSteps": ("secretsmanager", "route53", "dynamodb", "lambda", "xray"),
}
# How the VPC reaches each: an interface endpoint, DynamoDB's gateway endpoint, or (Route 53) only NAT.
AWS_API_ROUTES = {
    "events": "EventBridge (endpoint events)",
    "secretsmanager": "Secrets Manager (endpoint secretsmanager)",
    "xray": "X-Ray (endpoint xray)",
    "dynamodb": "DynamoDB (gateway endpoint dynamodb)",
    "lambda": "Lambda, for hooks (endpoint lambda)",
    "route53": "Route 53 (NAT: it has no VPC endpoint)",
}


def aws_calls(config: Config, function_key: str) -> set[str]:
    """The AWS APIs (IAM service prefixes) a function calls with this config: Lambda only for Lambda hooks."""
    calls = set(AWS_CALLS.get(function_key, ()))
    return calls if _has_lambda_hooks(config) else calls - {"lambda"}


def _has_lambda_hooks(config: Config) -> bool:
    return any(hook.function for hook in config.recovery_hooks)


def in_vpc_functions(model: Topology) -> list[str]:
    """The functions deployed inside `network`: the VPC's probe and the steps that talk to a site."""
    steps = [key for key, placement in model.functions if placement.in_vpc]
    return (["Probe"] if any(v.placement.in_vpc for v in model.vantage_points) else []) + steps


def prerequisites(config: Config, model: Topology) -> list[tuple[str, list[str]]]:
    """What the network must provide, per placement deployed: routes, security groups, NAT or endpoints.
    Derived from the endpoints each placement's code reaches, so it changes with the config."""
    found: list[tuple[str, list[str]]] = []
    placements = dict.fromkeys(v.placement for v in model.vantage_points)
    for placement in placements:
        runners = [v for v in model.vantage_points if v.placement == placement]
        public = sorted({e.address for e in model.endpoints if e.reach == "public" and _run_by(runners, e)})
        if not placement.in_vpc:
            needs = [f"outbound internet to {len(public)} public endpoints ({_list(public)}); AWS APIs directly"]
            if placement.region:
                needs.append(
                    f"reads the vCenter secrets and publishes to the bus in the home region from {placement.region}"
                )
            found.append((f"{placement.name} ({placement.describe()})", needs))
            continue
        assert config.network is not None
        private = {
            site.name: sorted({e.address for e in model.endpoints if e.site == site.name and e.reach == "private"})
            for site in config.sites
        }
        calls = sorted({api for key in in_vpc_functions(model) for api in aws_calls(config, key)})
        needs = [
            f"routes from {', '.join(config.network.subnet_ids)} over the VPN or Direct Connect to both sites' "
            f"private endpoints: {', '.join(f'{site}: {_list(addrs)}' for site, addrs in private.items())}",
            f"security groups {', '.join(config.network.security_group_ids)} allow outbound TCP to "
            f"{_list(sorted({a for addrs in private.values() for a in addrs}))} (vCenter, storage and site checks), "
            "to the public endpoints and to the AWS APIs (443)",
            "a NAT gateway or VPC endpoints for the AWS APIs the functions here call: "
            + ", ".join(AWS_API_ROUTES[api] for api in calls),
        ]
        if public:
            needs.append(
                f"a NAT gateway for the {len(public)} public endpoints its probe checks from inside the VPC "
                "(VPC endpoints do not reach the internet)"
            )
        drill = sorted({e.address for e in model.drill_endpoints if e.reach == "private"})
        if drill:
            needs.append(
                f"routes and security groups to the drill network ({_list(drill)}), over "
                "the VPN or Direct Connect: SiteSteps verifies a drill's clones there"
            )
        hostnames = sorted({a.rsplit(":", 1)[0] for addrs in private.values() for a in addrs if not _is_ip(a)})
        if hostnames:
            needs.append(
                f"names only the sites' DNS knows ({', '.join(hostnames)}): a Route 53 Resolver forwarding rule "
                "for their domains in the VPC"
            )
        found.append((f"{placement.name} ({placement.describe()}, {config.network.vpc_id})", needs))
    return found


def _run_by(runners: Sequence[VantagePoint], endpoint: Endpoint) -> bool:
    return any(v.runs(*endpoint.key) for v in runners)


def _list(addresses: Sequence[str]) -> str:
    return ", ".join(addresses) or "none"


def _is_ip(address: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(address.rsplit(":", 1)[0].strip("[]"))
    except ValueError:
        return False
    return True
