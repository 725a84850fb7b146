"""Name lookups for a round (or a hook call) in threads it owns, each bounded by its own budget.

asyncio resolves names with `getaddrinfo` in the loop's default executor, and `asyncio.run` joins that
executor's threads before it returns: one lookup the system resolver never answers would hold the round
(and the probe's Lambda) long past its deadline. Here a lookup nobody waits for any more is left to its
thread, which the owner drops without joining (`close`).
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from functools import partial
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult

# Threads for lookups only: a vCenter read blocked in another pool never delays a name lookup.
LOOKUP_THREADS = 16
# A lookup gives up before the check's own timeout, so that the reason says it was the name lookup.
LOOKUP_SHARE = 0.9
DEFAULT_BUDGET_S = 5.0
AddrInfo = tuple[Any, ...]
Connect = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

_budget_s: ContextVar[float] = ContextVar("dcwatch_lookup_budget_s", default=DEFAULT_BUDGET_S)


class LookupTimeout(OSError):
    """The system resolver did not answer in time; an OSError, as any other unreachable address."""

    def __init__(self, host: str, budget_s: float):
        super().__init__(errno.ETIMEDOUT, f"name lookup of {host!r} timed out after {budget_s:g} s")

    def __str__(self) -> str:
        return str(self.strerror)  # aiohttp quotes the strerror, the probers the whole error: both read the same


class Lookups:
    """The lookups of one round; `close()` when it is over (never waits for a lookup still running)."""

    def __init__(self) -> None:
        self._threads: ThreadPoolExecutor | None = None

    async def getaddrinfo(self, host: str, port: int, family: int = socket.AF_UNSPEC) -> list[AddrInfo]:
        """`socket.getaddrinfo` for a stream connection, within the budget `bounded` set (an address: no thread)."""
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            pass
        else:
            kind = socket.AF_INET6 if address.version == 6 else socket.AF_INET
            return [(kind, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(address), port))]
        if self._threads is None:
            self._threads = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="dcwatch-lookup")
        budget_s = _budget_s.get()
        lookup = partial(socket.getaddrinfo, host, port, family, socket.SOCK_STREAM)
        try:
            async with asyncio.timeout(budget_s):
                return await asyncio.get_running_loop().run_in_executor(self._threads, lookup)
        except TimeoutError:
            raise LookupTimeout(host, budget_s) from None

    async def open_connection(
        self, host: str, port: int, **options: Any
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """`asyncio.open_connection` to the first address of `host` that accepts (TLS names `host` unless told)."""
        if options.get("ssl") is not None:
            options.setdefault("server_hostname", host)
        addresses = await self.getaddrinfo(host, port)
        last: OSError | None = None
        for family, _, _, _, sockaddr in addresses:
            try:
                return await asyncio.open_connection(sockaddr[0], sockaddr[1], family=family, **options)
            except ssl.SSLError:
                raise  # the peer answered: its certificate is the check's verdict, not another address's
            except OSError as exc:
                last = exc
        raise last or OSError(f"no address for {host!r}")

    def resolver(self) -> AbstractResolver:
        """This round's lookups as aiohttp's resolver."""
        return _AiohttpResolver(self)

    def close(self) -> None:
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None


@contextmanager
def bounded(timeout_s: float) -> Iterator[None]:
    """Lookups started inside (and in the tasks they start) give up within this share of `timeout_s`."""
    token = _budget_s.set(timeout_s * LOOKUP_SHARE)
    try:
        yield
    finally:
        _budget_s.reset(token)


class _AiohttpResolver(AbstractResolver):
    def __init__(self, lookups: Lookups):
        self._lookups = lookups

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        numeric = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
        return [
            ResolveResult(hostname=host, host=sockaddr[0], port=sockaddr[1], family=kind, proto=proto, flags=numeric)
            for kind, _, proto, _, sockaddr in await self._lookups.getaddrinfo(host, port, family)
            if kind in (socket.AF_INET, socket.AF_INET6)
        ]

    async def close(self) -> None:
        """The owner of the lookups closes them, when its round is over."""
