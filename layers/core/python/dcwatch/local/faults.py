"""The local network as deployed: one TCP proxy per link and target, faults set per link at run time.

A link is one placement's path towards one site (`dcwatch.local.links`): the internet, or for the VPC
the VPN into the site; or one of a site's own paths: its agent's uplink to AWS, the inter-site link,
the customers' path to its services. Every vantage point and every function reaches a site's endpoints (vCenter,
checks, storage API) only through the links of its placement (hooks: through their callers'), so the
aws-vpc probe and the VPC-placed workflow steps share the VPC's proxies, and an endpoint a placement
does not reach is not routed at all: its address refuses connections, as a private vCenter refuses a
function outside the VPC in AWS. A fault (refused, blackholed, lossy, slow) is network behaviour the
real probers and steps meet, never an edited result. The proxies run on one event loop in a process of
their own and stop with the run.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from dcwatch.config import Reach
from dcwatch.local.children import Child
from dcwatch.local.links import AnyLink, hook_link, link_for
from dcwatch.topology import VCENTER_PREFIX, Placement, Topology

LOOPBACK = "127.0.0.1"
START_TIMEOUT_S = 5.0
PROCESS_START_TIMEOUT_S = 30.0  # a fresh interpreter imports the link model first, on a busy machine
Mode = Literal["pass", "refuse", "blackhole"]


@dataclass(frozen=True)
class Fault:
    """What a path does to each new connection."""

    mode: Mode = "pass"
    loss_pct: float = 0.0  # this share of connections is silently dropped (accepted, never answered)
    latency_s: float = 0.0  # added before the connection is forwarded

    def describe(self) -> str:
        parts: list[str] = [] if self.mode == "pass" else [self.mode]
        if self.loss_pct:
            parts.append(f"{self.loss_pct:g} % loss")
        if self.latency_s:
            parts.append(f"+{self.latency_s:g} s latency")
        return ", ".join(parts) or "pass"


PASS = Fault()


@dataclass(frozen=True)
class Route:
    """One target of one site, behind one link."""

    link: AnyLink
    target: tuple[str, int]


class FaultNetwork:
    """Proxies keyed by link and target; `fault(link)` decides per connection.

    The proxies run in a process of their own (`dcwatch.local.proxies`, on one event loop), not in the runtime's: the
    runtime's interpreter is busy with every handler and Step Functions, and a proxy starved of it for a few
    seconds would cut every link at once, a partition no scenario asked for (both site agents would count
    their peer and AWS lost, and fence). This side keeps the faults it set and forwards every change.
    """

    def __init__(self, seed: int = 5):
        self.seed = seed
        self._faults: dict[AnyLink, Fault] = {}
        self._routes: dict[Route, int] = {}
        self._lock = threading.Lock()
        self._refusing: socket.socket | None = None
        self._child: Child | None = None

    def start(self) -> FaultNetwork:
        code = f"from dcwatch.local.proxies import serve; serve({{fd}}, {self.seed})"
        self._child = Child("the fault network", code, stdout=None)
        self._call("ping", timeout_s=PROCESS_START_TIMEOUT_S)
        return self

    def _call(self, command: str, *args: Any, timeout_s: float = START_TIMEOUT_S) -> Any:
        if self._child is None:
            raise RuntimeError("the fault network is not running")
        ok, value = self._child.call(command, *args, timeout_s=timeout_s)
        if not ok:
            raise RuntimeError(f"fault network: {command} failed: {value}")
        return value

    def route(self, link: AnyLink, host: str, port: int) -> tuple[str, int]:
        """The loopback address through which code on `link` reaches host:port (created on first use)."""
        route = Route(link, (host, port))
        with self._lock:
            known = self._routes.get(route)
        if known is None:
            known = self._routes[route] = int(self._call("route", route))
        return LOOPBACK, known

    def refusing(self) -> tuple[str, int]:
        """An address that refuses every connection: what an endpoint with no link from here is.

        A socket bound and never listening: the kernel answers each connection with a reset, and the port
        stays ours, so nothing else on the machine can start listening there during the run.
        """
        with self._lock:
            if self._refusing is None:
                self._refusing = socket.socket()
                self._refusing.bind((LOOPBACK, 0))
            return LOOPBACK, int(self._refusing.getsockname()[1])

    def set_fault(self, link: AnyLink, fault: Fault) -> None:
        self.set_faults([link], fault)

    def set_faults(self, links: list[AnyLink], fault: Fault) -> None:
        """Every one of `links` at once (one change of the proxies): a partition never lands link by link."""
        self._call("set_faults", links, fault)
        with self._lock:
            for link in links:
                self._faults[link] = fault

    def fault(self, link: AnyLink) -> Fault:
        with self._lock:
            return self._faults.get(link, PASS)

    def faults(self) -> dict[AnyLink, Fault]:
        """The links that do not simply pass, now."""
        with self._lock:
            return {link: fault for link, fault in self._faults.items() if fault != PASS}

    def heal(self, links: list[AnyLink] | None = None) -> None:
        """`links` (every link when None) pass again."""
        self._call("heal", links)
        with self._lock:
            if links is None:
                self._faults.clear()
            for link in links or []:
                self._faults.pop(link, None)

    @property
    def connections(self) -> int:
        return int(self._call("counts")[0])

    @property
    def dropped(self) -> int:
        """Connections refused, blackholed or lost."""
        return int(self._call("counts")[1])

    @property
    def by_link(self) -> Counter[AnyLink]:
        """Connections attempted over each link."""
        return Counter(self._call("counts")[2])

    def reset_counts(self) -> None:
        self._call("reset_counts")

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is None:
            return
        child.stop(START_TIMEOUT_S)
        with self._lock:
            self._routes.clear()
            if self._refusing is not None:
                self._refusing.close()
                self._refusing = None


def routed_config(
    data: dict[str, Any], placement: Placement, topology: Topology, network: FaultNetwork
) -> dict[str, Any]:
    """The config as code at `placement` sees the sites: every endpoint behind the link it is reached over.

    `data` is the config as plain data (`Config.model_dump(mode="json")`), `topology` its model: an
    endpoint's reach is the topology's, and one the placement does not reach gets the refusing address.
    HTTP hooks go over the link of the steps that call them (`hook_link`), whichever placement reads this
    config, since they travel in the plan. A drill's checks and storage hooks go to the standby (the site that is
    not `active_site`), where its clones run. DNS checks (UDP) and Lambda hooks are not routed.
    """
    routed = deepcopy(data)

    def address(site: str, reach: Reach, host: str, port: int) -> tuple[str, int]:
        link = link_for(placement, site, reach)
        return network.refusing() if link is None else network.route(link, host, port)

    def rewrite(url: str, to: Callable[[str, int], tuple[str, int]]) -> str:
        parsed = urlparse(url)
        host, port = to(parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80))
        return parsed._replace(netloc=f"{host}:{port}").geturl()

    def via(site: str, reach: Reach, url: str) -> str:
        return rewrite(url, lambda host, port: address(site, reach, host, port))

    def route_check(site: str, check: dict[str, Any], reach: Reach | None = None) -> None:
        kind, reach = check.get("kind", "http"), reach or topology.endpoint(site, check["name"]).reach
        if kind == "http":
            check["url"] = via(site, reach, check["url"])
        elif kind in ("tcp", "tls"):
            if kind == "tls" and not check.get("server_name"):
                check["server_name"] = check["host"]
            check["host"], check["port"] = address(site, reach, check["host"], check.get("port", 443))

    def route_hooks(site: str, hooks: list[dict[str, Any]]) -> None:
        link = hook_link(topology, site)
        for hook in hooks:
            if hook.get("url"):
                hook["url"] = rewrite(hook["url"], lambda host, port: network.route(link, host, port))

    def route_power_hooks(site: str, holder: dict[str, Any]) -> None:
        route_hooks(site, holder.get("pre_power_on") or [])
        route_hooks(site, holder.get("post_power_on") or [])

    for site in routed["sites"]:
        name = site["name"]
        site["vcenter"]["url"] = via(name, topology.endpoint(name, VCENTER_PREFIX).reach, site["vcenter"]["url"])
        for check in site.get("checks", []):
            route_check(name, check)
        for group in site.get("groups", []):
            route_power_hooks(name, group)
        storage = site.get("storage") or {}
        if storage.get("promote_hook"):
            route_hooks(name, [storage["promote_hook"]])
    for service in routed["services"]:
        for site_name, at_site in service["sites"].items():
            for check in at_site["checks"]:
                route_check(site_name, check)
            for vm in at_site.get("vms", []):
                route_power_hooks(site_name, vm)
    drill, standby = routed.get("drill") or {}, _standby(routed)
    # A drill runs at the standby: its checks go where the clones are, over the same link as that site's endpoints
    # of the same reach (private by default: the VPN), so a fault of that path cuts the drill's verification too.
    reach_of = {e.field: e.reach for e in topology.drill_endpoints if e.site == standby}
    for i, service in enumerate(drill.get("services") or []):
        for j, check in enumerate(service["checks"]):
            reach = reach_of.get(f"drill.services[{i}].checks[{j}]", check.get("reach") or "private")
            route_check(standby, check, reach)
    route_hooks(standby, [drill[key] for key in ("snapshot_hook", "snapshot_cleanup_hook") if drill.get(key)])
    return routed


def _standby(data: dict[str, Any]) -> str:
    """The site that is not `active_site`: where a drill's clones run."""
    return next(str(s["name"]) for s in data["sites"] if s["name"] != data["active_site"])
