"""The fault network's process: one TCP proxy per route on one event loop, each listening only while its link
does not refuse and its target is up, and doing to each connection what its link's fault says; commands (add a
route, set or heal faults, count) come from the runtime over a pipe (`dcwatch.local.faults.FaultNetwork`)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from dcwatch.local.faults import LOOPBACK, PASS, Fault, Route
from dcwatch.local.links import AnyLink

UPSTREAM_CONNECT_TIMEOUT_S = 5.0
HOLD_MAX_S = 30.0  # a blackholed connection is held at most this long, whatever the client does
# Connections the kernel queues for a listener before it accepts them: a round's checks connect at once, and a
# SYN past a full queue is dropped and retried by the client only after 1 s, then 3 s (a timeout, not a failure).
LISTEN_BACKLOG = 1024
WATCH_S = 0.2  # a target found down is tried this often, until it is back
WATCH_MAX_S = 3600.0


def serve(fd: int, seed: int) -> None:
    """The fault network's process: the proxies on one event loop, commands from the runtime over `fd`."""
    asyncio.run(_answer(_Proxies(seed), Connection(fd)))


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

    async def command(self, command: str, args: tuple[Any, ...]) -> Any:
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


async def _answer(proxies: _Proxies, conn: Any) -> None:
    """Each command from the runtime, answered in turn, until it says stop (or is gone)."""
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
            result = await proxies.command(command, args)
            ok = True
        except Exception as exc:  # noqa: BLE001 - reported to the runtime, which raises it there
            result, ok = f"{type(exc).__name__}: {exc}", False
        if command == "stop":
            stopped.set_result(None)
        with contextlib.suppress(OSError):
            conn.send((ok, result))
    loop.remove_reader(conn.fileno())
