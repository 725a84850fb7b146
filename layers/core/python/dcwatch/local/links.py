"""The deployed network as links, computed from the topology: who reaches which site over which path.

A link is one placement's path towards one site: `public` (the internet; from the VPC through its NAT)
or `private` (the VPN / Direct Connect into the site, which only the VPC has). Links are keyed by
placement, not by function, because that is how the network is built: the aws-vpc probe and every
workflow step placed in the VPC share the VPC's links, so cutting the VPN to a site cuts all of them.
An endpoint its placement does not reach has no link at all. A site has three paths of its own
(`SiteLink`): its agent's uplink to AWS, the inter-site link towards its peer, and the customers' path
to its services. Pure: topology in, links out; the local runtime's fault network
(`dcwatch.local.faults`) puts a proxy behind each link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from dcwatch.config import Reach
from dcwatch.config.hooks import HOOK_STEPS
from dcwatch.topology import VCENTER_PREFIX, Placement, Topology

PATHS: tuple[Reach, ...] = ("public", "private")
PathRef = Literal["public", "private", "all"]
PROBE = "Probe"


@dataclass(frozen=True, order=True)
class Link:
    """One placement's path towards one site."""

    placement: str  # Placement.name: home, vpc, region-<region>
    site: str
    path: Reach  # public: the internet; private: the VPN / Direct Connect into the site

    def describe(self) -> str:
        over = "the VPN" if self.path == "private" else "the internet"
        return f"{self.placement} -> {self.site} over {over}"


SitePath = Literal["uplink", "inter-site", "customers"]
# The parties a partition separates, besides the sites themselves.
AWS, CUSTOMERS = "aws", "customers"


@dataclass(frozen=True, order=True)
class SiteLink:
    """A path of a site's own, which no AWS placement owns: `uplink`, its agent's path to AWS (DynamoDB,
    EventBridge); `inter-site`, from it towards its peer site (the agents' heartbeats; conceptually the
    mirror); `customers`, the customers' path to its service endpoints."""

    site: str
    path: SitePath

    def describe(self) -> str:
        return {
            "uplink": f"{self.site}'s agent -> AWS",
            "inter-site": f"{self.site} -> its peer over the inter-site link",
            "customers": f"customers -> {self.site}",
        }[self.path]


AnyLink = Link | SiteLink


def link_for(placement: Placement, site: str, reach: Reach) -> Link | None:
    """The link through which code at `placement` reaches an endpoint of `site` with `reach`; None: it does not."""
    return Link(placement.name, site, reach) if reach in placement.reaches else None


def hook_link(topology: Topology, site: str) -> Link:
    """The link over which a site's HTTP hooks are called: the hook steps' own, the VPN into the site from the
    VPC, the internet without one. Hook URLs travel in the recovery plan, which ValidateRequest builds
    wherever it runs, so every placement's config routes them over the callers' link."""
    caller = topology.placement(HOOK_STEPS[0])  # every hook step (groups', drills') runs in SiteSteps
    return Link(caller.name, site, "private" if caller.in_vpc else "public")


def placements(topology: Topology) -> dict[str, Placement]:
    """Every placement something runs at (vantage points and functions), by name, in deployment order."""
    found: dict[str, Placement] = {}
    for vantage in topology.vantage_points:
        found.setdefault(vantage.placement.name, vantage.placement)
    for _, placement in topology.functions:
        found.setdefault(placement.name, placement)
    return found


def links(topology: Topology, sites: Sequence[str]) -> list[Link]:
    """Every link of the deployment: each placement, each site, each path that placement has."""
    return [
        Link(placement.name, site, path)
        for placement in placements(topology).values()
        for site in sites
        for path in PATHS
        if path in placement.reaches
    ]


def select(
    topology: Topology,
    sites: Sequence[str],
    *,
    vantage: str | None = None,
    site: str | None = None,
    path: PathRef = "all",
) -> list[Link]:
    """The links of `vantage`'s placement (every placement when None) towards `site` (every site when None)."""
    placement = topology.vantage(vantage).placement.name if vantage is not None else None
    return [
        link
        for link in links(topology, sites)
        if placement in (None, link.placement) and site in (None, link.site) and path in ("all", link.path)
    ]


def between(topology: Topology, sites: Sequence[str], one: str, other: str) -> list[AnyLink]:
    """The links a partition between two parties cuts. `aws` and a site: every AWS placement's paths to the
    site and the site's agent uplink; two sites: the inter-site link, both ways; `customers` and a site: the
    customers' path. A site may be `all` (both sites). ValueError for a pair that shares no link."""
    pair = {one, other}
    if len(pair) != 2:
        raise ValueError(f"a partition needs two different parties, got {one!r} twice")
    parties = [p for p in (one, other) if p not in (AWS, CUSTOMERS)]
    named = [p for p in parties if p != "all"]
    unknown = [p for p in named if p not in sites]
    if unknown:
        raise ValueError(f"unknown party {unknown[0]!r}; known: {AWS}, {CUSTOMERS}, all, {', '.join(sites)}")
    if not parties:
        raise ValueError(f"{one} and {other} share no link: a partition separates a site from something")
    if len(parties) == 2:
        if "all" in parties:
            raise ValueError("a partition between two sites names both of them")
        return [SiteLink(site, "inter-site") for site in sites]
    outside = (pair - set(parties)).pop()
    cut = list(sites) if parties[0] == "all" else parties
    if outside == CUSTOMERS:
        return [SiteLink(site, "customers") for site in cut]
    found: list[AnyLink] = []
    for site in cut:
        found += [*select(topology, sites, site=site), SiteLink(site, "uplink")]
    return found


def vpc_vantage(topology: Topology) -> str | None:
    """The vantage point inside the VPC (whose links are the VPN's), None when nothing is deployed in one."""
    return next((v.name for v in topology.vantage_points if v.placement.in_vpc), None)


def describe(topology: Topology) -> list[str]:
    """The topology in two lines: vantage points (placement, checks run), then where the functions run and
    what only the VPC reaches."""
    vantages = ", ".join(f"{v.name} ({v.placement.describe()}) {len(v.checks)} checks" for v in topology.vantage_points)
    by_placement: dict[str, int] = {}
    for _, placement in topology.functions:
        by_placement[placement.describe()] = by_placement.get(placement.describe(), 0) + 1
    functions = ", ".join(f"{count} ({where})" for where, count in by_placement.items())
    private = {e.field: e for e in topology.endpoints if e.reach == "private"}.values()
    named = [f"{VCENTER_PREFIX if e.field.endswith('.vcenter') else e.check}@{e.site}" for e in private]
    drills = dict.fromkeys(e.check for e in topology.drill_endpoints if e.reach == "private")
    named += [f"the drill checks {', '.join(drills)} (at the standby's clones)"] if drills else []
    reach = f"reached only over the VPN, from the VPC: {', '.join(named)}" if named else "every endpoint is public"
    return [f"vantage points: {vantages}", f"functions: {functions}; {reach}"]
