"""The local network as deployed: one TCP proxy per link and target, faults set per link at run time.

A link is one placement's path towards one site (`dcwatch.local.links`): the internet, or for the VPC
the VPN into the site. Every vantage point and every function reaches a site's endpoints (vCenter,
checks, storage API) only through the links of its placement (hooks: through their callers'), so the
aws-vpc probe and the VPC-placed workflow steps share the VPC's proxies, and an endpoint a placement
does not reach is not routed at all: its address refuses connections, as a private vCenter refuses a
function outside the VPC in AWS. A fault (refused, blackholed, lossy, slow) is network behaviour the
real probers and steps meet, never an edited result. The proxies run on one event loop in one thread
and stop with the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

from dcwatch.config import Reach
from dcwatch.local.links import Link, hook_link, link_for
from dcwatch.topology import VCENTER_PREFIX, Placement, Topology

LOOPBACK = "127.0.0.1"
UPSTREAM_CONNECT_TIMEOUT_S = 5.0
HOLD_MAX_S = 30.0  # a blackholed connection is held at most this long, whatever the client does
START_TIMEOUT_S = 5.0
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

    link: Link
    target: tuple[str, int]


class FaultNetwork:
    """Proxies keyed by link and target; `fault(link)` decides per connection."""

    def __init__(self, seed: int = 5):
        self._faults: dict[Link, Fault] = {}
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-network", daemon=True)
        self._servers: dict[Route, tuple[asyncio.Server, int]] = {}
        self._connections: set[asyncio.Task[Any]] = set()
        self._lock = threading.Lock()
        self._refusing: socket.socket | None = None
        self.connections = 0
        self.dropped = 0
        self.by_link: Counter[Link] = Counter()  # connections attempted over each link

    def start(self) -> FaultNetwork:
        self._thread.start()
        return self

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=START_TIMEOUT_S)

    def route(self, link: Link, host: str, port: int) -> tuple[str, int]:
        """The loopback address through which code on `link` reaches host:port (created on first use)."""
        route = Route(link, (host, port))
        if route not in self._servers:
            server = self._call(asyncio.start_server(self._handler(route), LOOPBACK, 0))
            self._servers[route] = (server, int(server.sockets[0].getsockname()[1]))
        return LOOPBACK, self._servers[route][1]

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

    def set_fault(self, link: Link, fault: Fault) -> None:
        with self._lock:
            self._faults[link] = fault

    def fault(self, link: Link) -> Fault:
        with self._lock:
            return self._faults.get(link, PASS)

    def faults(self) -> dict[Link, Fault]:
        """The links that do not simply pass, now."""
        with self._lock:
            return {link: fault for link, fault in self._faults.items() if fault != PASS}

    def heal(self, links: list[Link] | None = None) -> None:
        """`links` (every link when None) pass again."""
        with self._lock:
            if links is None:
                self._faults.clear()
            for link in links or []:
                self._faults.pop(link, None)

    def reset_counts(self) -> None:
        with self._lock:
            self.connections = self.dropped = 0
            self.by_link.clear()

    def _handler(self, route: Route) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await self._serve(route, reader, writer)
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                self._connections.discard(task)
                writer.transport.abort()

        return handle

    async def _serve(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = self.fault(route.link)
        with self._lock:
            self.connections += 1
            self.by_link[route.link] += 1
            dropped = fault.mode == "blackhole" or self._rng.random() * 100 < fault.loss_pct
            self.dropped += dropped or fault.mode == "refuse"
        if fault.mode == "refuse":
            return  # the handler aborts the connection: the client sees it reset
        if dropped:
            await _hold(reader)
            return
        if fault.latency_s:
            await asyncio.sleep(fault.latency_s)
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(*route.target), UPSTREAM_CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError):
            return  # the target is down: the client's connection is reset, as a dead host's would be
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.transport.abort()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            for server, _ in self._servers.values():
                server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)

        try:
            self._call(close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            self._servers.clear()
            if self._refusing is not None:
                self._refusing.close()
                self._refusing = None


async def _hold(reader: asyncio.StreamReader) -> None:
    """Say nothing until the client gives up (or the bound passes): a lost packet, as the client sees it."""
    try:
        async with asyncio.timeout(HOLD_MAX_S):
            while await reader.read(4096):
                pass
    except TimeoutError:
        pass


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()


def routed_config(
    data: dict[str, Any], placement: Placement, topology: Topology, network: FaultNetwork
) -> dict[str, Any]:
    """The config as code at `placement` sees the sites: every endpoint behind the link it is reached over.

    `data` is the config as plain data (`Config.model_dump(mode="json")`), `topology` its model: an
    endpoint's reach is the topology's, and one the placement does not reach gets the refusing address.
    HTTP hooks go over the link of the steps that call them (`hook_link`), whichever placement reads this
    config, since they travel in the plan. DNS checks (UDP) and Lambda hooks are not routed.
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

    def route_check(site: str, check: dict[str, Any]) -> None:
        kind, reach = check.get("kind", "http"), topology.endpoint(site, check["name"]).reach
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
    return routed
