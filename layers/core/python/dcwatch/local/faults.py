"""The local vantage points' network paths: one TCP proxy per vantage point and target, faults set at run time.

Each vantage point reaches every target (service endpoint, vCenter) of a site through its own proxy on
loopback, so a fault (refused, blackholed, lossy, slow) is network behaviour the real probers meet,
never an edited result. The proxies run on one event loop in one thread and stop with the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlparse

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
class Path:
    vantage: str
    site: str
    target: tuple[str, int]


class FaultNetwork:
    """Proxies keyed by vantage point, site and target; `fault(vantage, site)` decides per connection."""

    def __init__(self, seed: int = 5):
        self._faults: dict[tuple[str, str], Fault] = {}
        self._rng = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-network", daemon=True)
        self._servers: dict[Path, tuple[asyncio.Server, int]] = {}
        self._connections: set[asyncio.Task[Any]] = set()
        self._lock = threading.Lock()
        self.connections = 0
        self.dropped = 0

    def start(self) -> FaultNetwork:
        self._thread.start()
        return self

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=START_TIMEOUT_S)

    def route(self, vantage: str, site: str, host: str, port: int) -> tuple[str, int]:
        """The loopback address through which `vantage` reaches host:port of `site` (created on first use)."""
        path = Path(vantage, site, (host, port))
        if path not in self._servers:
            server = self._call(asyncio.start_server(self._handler(path), LOOPBACK, 0))
            self._servers[path] = (server, int(server.sockets[0].getsockname()[1]))
        return LOOPBACK, self._servers[path][1]

    def set_fault(self, vantage: str, site: str, fault: Fault) -> None:
        with self._lock:
            self._faults[(vantage, site)] = fault

    def fault(self, vantage: str, site: str) -> Fault:
        with self._lock:
            return self._faults.get((vantage, site), PASS)

    def heal(self) -> None:
        """Every path passes again (between scenarios)."""
        with self._lock:
            self._faults.clear()

    def _handler(self, path: Path) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._connections.add(task)
            try:
                await self._serve(path, reader, writer)
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                self._connections.discard(task)
                writer.transport.abort()

        return handle

    async def _serve(self, path: Path, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        fault = self.fault(path.vantage, path.site)
        with self._lock:
            self.connections += 1
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
                asyncio.open_connection(*path.target), UPSTREAM_CONNECT_TIMEOUT_S
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


def routed_config(data: dict[str, Any], vantage: str, network: FaultNetwork) -> dict[str, Any]:
    """The config as the probe at `vantage` sees it: every vCenter and check target behind its own path.

    `data` is the config as plain data (`Config.model_dump(mode="json")`); DNS checks (UDP) are not routed.
    """
    routed = deepcopy(data)

    def via(site: str, url: str) -> str:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        host, local_port = network.route(vantage, site, parsed.hostname or "", port)
        return parsed._replace(netloc=f"{host}:{local_port}").geturl()

    def route_check(site: str, check: dict[str, Any]) -> None:
        kind = check.get("kind", "http")
        if kind == "http":
            check["url"] = via(site, check["url"])
        elif kind in ("tcp", "tls"):
            if kind == "tls" and not check.get("server_name"):
                check["server_name"] = check["host"]
            check["host"], check["port"] = network.route(vantage, site, check["host"], check.get("port", 443))

    for site in routed["sites"]:
        site["vcenter"]["url"] = via(site["name"], site["vcenter"]["url"])
        for check in site.get("checks", []):
            route_check(site["name"], check)
    for service in routed["services"]:
        for site_name, at_site in service["sites"].items():
            for check in at_site["checks"]:
                route_check(site_name, check)
    return routed
