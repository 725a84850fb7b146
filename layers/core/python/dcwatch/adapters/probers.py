"""Running each kind of positive check against the real world, asynchronously.

One `Prober` serves one round: it holds the round's HTTP connection pool (aiohttp) and runs
blocking work (pyvmomi) in threads, so a thousand checks share two cores without waiting on each
other.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

import aiohttp

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import vcenter_login_check
from dcwatch.checks import DEFAULT_CONCURRENCY, Outcome, PlannedCheck, run_round_async
from dcwatch.conditions import Observation, evaluate_all, parse_condition
from dcwatch.config import HttpCheck, TcpCheck, VCenter
from dcwatch.events import ProbeResult

MAX_BODY = 256 * 1024
CredentialsFor = Callable[[str], Credentials]


class Prober:
    """A `CheckRunner` for every kind of check; `aclose()` when the round is over."""

    def __init__(self, credentials: CredentialsFor, concurrency: int = DEFAULT_CONCURRENCY):
        self._credentials = credentials
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def __call__(self, check: PlannedCheck) -> Outcome:
        spec = check.spec
        if isinstance(spec, HttpCheck):
            return await self.http(spec)
        if isinstance(spec, TcpCheck):
            return await tcp_check(spec)
        if isinstance(spec, VCenter):
            return await self.vcenter(check, spec)
        raise NotImplementedError(f"no prober for checks of kind {check.kind!r}")

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency, limit_per_host=0, ttl_dns_cache=60)
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "dcwatch-probe"}, trust_env=False
            )
        return self._session

    async def http(self, check: HttpCheck) -> Outcome:
        started = time.perf_counter()
        try:
            async with self._http_session().request(
                check.method,
                check.url,
                headers=check.headers,
                data=check.body,
                allow_redirects=check.follow_redirects,
                ssl=check.verify_tls,
                timeout=aiohttp.ClientTimeout(total=check.timeout_s),
            ) as response:
                body = await response.content.read(MAX_BODY)
                status = response.status
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return Outcome(False, f"timeout after {check.timeout_s:g} s")
        except aiohttp.ClientConnectorCertificateError as exc:
            return Outcome(False, f"TLS certificate refused: {exc.certificate_error}")
        except aiohttp.ClientSSLError as exc:
            return Outcome(False, f"TLS error: {exc}")
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            return Outcome(False, "connection refused" if refused else f"unreachable: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return Outcome(False, f"HTTP error: {type(exc).__name__}: {exc}"[:200])
        elapsed_ms = (time.perf_counter() - started) * 1000
        return judge_http(check, status, body, elapsed_ms)

    async def vcenter(self, check: PlannedCheck, vcenter: VCenter) -> Outcome:
        credentials = self._credentials(vcenter.credentials_secret)
        try:
            await asyncio.to_thread(vcenter_login_check, vcenter, credentials, check.timeout_s)
        except Exception as exc:  # noqa: BLE001 - any failure to log in is the check's outcome
            return Outcome(False, str(exc)[:200])
        return Outcome(True)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def judge_http(check: HttpCheck, status: int, body: bytes, elapsed_ms: float) -> Outcome:
    """The verdict on one HTTP answer: status, body text, regex, then the conditions."""
    if status not in check.expect_status:
        return Outcome(False, f"status {status}")
    text = body.decode("utf-8", errors="replace")
    if check.body_contains is not None and check.body_contains not in text:
        return Outcome(False, f"body missing {check.body_contains!r}")
    if check.body_regex is not None and not re.search(check.body_regex, text):
        return Outcome(False, f"body does not match /{check.body_regex}/")
    if check.conditions:
        failed = evaluate_all(
            [parse_condition(c) for c in check.conditions], Observation(status, round(elapsed_ms, 1), text)
        )
        if failed:
            return Outcome(False, "; ".join(failed)[:200])
    return Outcome(True)


async def tcp_check(check: TcpCheck) -> Outcome:
    try:
        reader, writer = await asyncio.open_connection(check.host, check.port)
    except ConnectionRefusedError:
        return Outcome(False, "connection refused")
    except OSError as exc:
        return Outcome(False, f"unreachable: {exc.strerror or exc}")
    try:
        if check.banner is None:
            return Outcome(True)
        line = (await reader.readline()).decode("utf-8", errors="replace").strip()
        if re.search(check.banner, line):
            return Outcome(True)
        return Outcome(False, f"banner {line[:60]!r} does not match /{check.banner}/")
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()


async def probe(
    checks: list[PlannedCheck], credentials: CredentialsFor, *, concurrency: int = DEFAULT_CONCURRENCY, **options: Any
) -> list[ProbeResult]:
    prober = Prober(credentials, concurrency)
    try:
        return await run_round_async(checks, prober, concurrency=concurrency, **options)
    finally:
        await prober.aclose()


def probe_round(checks: list[PlannedCheck], credentials: CredentialsFor, **options: Any) -> list[ProbeResult]:
    """One round, from synchronous code (handlers, workflow steps)."""
    return asyncio.run(probe(checks, credentials, **options))
