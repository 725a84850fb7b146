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

import asyncio
import contextlib
import random
import socket
import threading
from collections import Counter
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Literal
from urllib.parse import urlparse

from dcwatch.config import Reach
from dcwatch.local.children import Child
from dcwatch.local.links import AnyLink, hook_link, link_for
from dcwatch.topology import VCENTER_PREFIX, Placement, Topology

LOOPBACK = "127.0.0.1"
UPSTREAM_CONNECT_TIMEOUT_S = 5.0
HOLD_MAX_S = 30.0  # a blackholed connection is held at most this long, whatever the client does
START_TIMEOUT_S = 5.0
PROCESS_START_TIMEOUT_S = 30.0  # a fresh interpreter imports the link model first, on a busy machine
# Connections the kernel queues for a listener before it accepts them: a round's checks connect at once, and a
# SYN past a full queue is dropped and retried by the client only after 1 s, then 3 s (a timeout, not a failure).
LISTEN_BACKLOG = 1024
WATCH_S = 0.2  # a target found down is tried this often, until it is back
WATCH_MAX_S = 3600.0
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

    The proxies run in a process of their own (`_Proxies`, on one event loop), not in the runtime's: the
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
        code = f"from dcwatch.local.faults import _serve; _serve({{fd}}, {self.seed})"
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


def _serve(fd: int, seed: int) -> None:
    """The fault network's process: the proxies on one event loop, commands from the runtime over `fd`."""
    asyncio.run(_Proxies(seed).serve(Connection(fd)))


def _reusing_port() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


@dataclass
class _Listener:
    """One route's port: held for the whole run by a socket that never listens, so that closing the listener
    refuses connections (no route, a dead host) while the port stays the route's."""

    holder: socket.socket
    port: int
    server: asyncio.Server | None = None
    target_down: bool = False


class _Proxies:
    """A refused link, or a target that is down, refuses at connect time, as the deployed network does (a
    client then knows no TCP connection was made: `VcenterUnreachable`, not a vCenter that failed mid-call);
    the proxy listens only while its link does not refuse and its target is up. A target is found down by
    the connection that cannot reach it, and watched until it is back."""

    def __init__(self, seed: int):
        self._faults: dict[AnyLink, Fault] = {}
        self._rng = random.Random(seed)
        self._servers: dict[Route, _Listener] = {}
        self._watched: set[tuple[str, int]] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self.connections = 0
        self.dropped = 0
        self.by_link: Counter[AnyLink] = Counter()

    async def serve(self, conn: Any) -> None:
        loop = asyncio.get_running_loop()
        stopped = loop.create_future()
        commands: asyncio.Queue[tuple[str, tuple[Any, ...]]] = asyncio.Queue()

        def readable() -> None:
            try:
                commands.put_nowait(conn.recv())
            except (EOFError, OSError):
                commands.put_nowait(("stop", ()))  # the runtime is gone

        loop.add_reader(conn.fileno(), readable)
        while not stopped.done():
            command, args = await commands.get()
            try:
                result = await self._command(command, args)
                ok = True
            except Exception as exc:  # noqa: BLE001 - reported to the runtime, which raises it there
                result, ok = f"{type(exc).__name__}: {exc}", False
            if command == "stop":
                stopped.set_result(None)
            with contextlib.suppress(OSError):
                conn.send((ok, result))
        loop.remove_reader(conn.fileno())

    async def _command(self, command: str, args: tuple[Any, ...]) -> Any:
        if command == "ping":
            return "pong"
        if command == "route":
            (route,) = args
            if route not in self._servers:
                holder = _reusing_port()
                holder.bind((LOOPBACK, 0))
                self._servers[route] = _Listener(holder, int(holder.getsockname()[1]))
                await self._update(route)
            return self._servers[route].port
        if command == "set_faults":
            links, fault = args
            for link in links:
                self._faults[link] = fault
            for link in links:
                await self._update_link(link)
            return None
        if command == "heal":
            (links,) = args
            healed = list(self._faults) if links is None else links
            for link in healed:
                self._faults.pop(link, None)
                await self._update_link(link)
            return None
        if command == "counts":
            return self.connections, self.dropped, dict(self.by_link)
        if command == "reset_counts":
            self.connections = self.dropped = 0
            self.by_link.clear()
            return None
        if command == "stop":
            for listener in self._servers.values():
                if listener.server is not None:
                    listener.server.close()
                listener.holder.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            return None
        raise ValueError(f"unknown command {command!r}")

    async def _update_link(self, link: AnyLink) -> None:
        for route in [r for r in self._servers if r.link == link]:
            await self._update(route)

    async def _update(self, route: Route) -> None:
        """Listen exactly while the route's link does not refuse and its target is up."""
        listener = self._servers[route]
        listen = self._faults.get(route.link, PASS).mode != "refuse" and not listener.target_down
        if listen and listener.server is None:
            sock = _reusing_port()
            sock.bind((LOOPBACK, listener.port))
            sock.listen(LISTEN_BACKLOG)
            sock.setblocking(False)
            listener.server = await asyncio.start_server(self._handler(route), sock=sock, backlog=LISTEN_BACKLOG)
        elif not listen and listener.server is not None:
            listener.server.close()  # connections already made run on; new ones are refused
            listener.server = None

    async def _target_down(self, target: tuple[str, int]) -> None:
        for route, listener in list(self._servers.items()):
            if route.target == target:
                listener.target_down = True
                await self._update(route)
        if target not in self._watched:
            self._watched.add(target)
            asyncio.get_running_loop().create_task(self._watch(target))

    async def _watch(self, target: tuple[str, int]) -> None:
        """Until the target accepts connections again (every WATCH_S, at most WATCH_MAX_S): then listen again."""
        for _ in range(int(WATCH_MAX_S / WATCH_S)):
            await asyncio.sleep(WATCH_S)
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(*target), UPSTREAM_CONNECT_TIMEOUT_S)
            except (OSError, TimeoutError):
                continue
            writer.transport.abort()
            break
        self._watched.discard(target)
        for route, listener in list(self._servers.items()):
            if route.target == target:
                listener.target_down = False
                await self._update(route)

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
        fault = self._faults.get(route.link, PASS)
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
            # The target is down: this client's connection is reset; the next ones are refused at connect time.
            await self._target_down(route.target)
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.transport.abort()


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
