"""Running each kind of positive check against the real world, asynchronously.

One `Prober` serves one round: it holds the round's HTTP connection pool (aiohttp) and runs
blocking work (pyvmomi) in threads of its own, so a thousand checks share two cores without waiting
on each other, and a round ends by its deadline even while a vCenter read is still blocked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import re
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from dcwatch.adapters.lookups import Connect, Lookups, bounded
from dcwatch.adapters.secrets import Credentials, HeadersFor, no_headers_secrets
from dcwatch.adapters.tls import tls_context
from dcwatch.config import DnsCheck, HttpCheck, TcpCheck, TlsCheck, VCenter
from dcwatch.config.conditions import Observation, evaluate_all, parse_condition
from dcwatch.detection.checks import DEFAULT_CONCURRENCY, Outcome, PlannedCheck, run_round_async
from dcwatch.detection.vcenter import VcenterSnapshot, judge_part
from dcwatch.errors import SecretUnusable
from dcwatch.events import ProbeResult

if TYPE_CHECKING:
    import dns.rdata

MAX_BODY = 256 * 1024
DAY_S = 86400
X509_V_ERR_CERT_HAS_EXPIRED = 10
CredentialsFor = Callable[[str], Credentials]
T = TypeVar("T")


class Prober:
    """A `CheckRunner` for every kind of check; `aclose()` when the round is over."""

    def __init__(
        self,
        credentials: CredentialsFor,
        concurrency: int = DEFAULT_CONCURRENCY,
        headers: HeadersFor = no_headers_secrets,
    ):
        self._credentials = credentials
        self._headers = headers
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None
        self._vcenter_reads: dict[str, asyncio.Future[VcenterSnapshot]] = {}
        self._secret_reads: dict[str, asyncio.Future[dict[str, str]]] = {}
        self._threads: ThreadPoolExecutor | None = None
        self._lookups = Lookups()

    async def __call__(self, check: PlannedCheck) -> Outcome:
        spec = check.spec
        with bounded(check.timeout_s):
            if isinstance(spec, HttpCheck):
                return await self.http(spec)
            if isinstance(spec, TcpCheck):
                return await tcp_check(spec, self._lookups.open_connection)
            if isinstance(spec, TlsCheck):
                return await tls_check(spec, self._lookups.open_connection)
        if isinstance(spec, DnsCheck):
            return await dns_check(spec)
        if isinstance(spec, VCenter):
            return await self.vcenter(check, spec)
        raise NotImplementedError(f"no prober for checks of kind {check.kind!r}")

    def _http_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._concurrency, limit_per_host=0, ttl_dns_cache=60, resolver=self._lookups.resolver()
            )
            self._session = aiohttp.ClientSession(
                connector=connector, headers={"User-Agent": "dcwatch-probe"}, trust_env=False
            )
        return self._session

    async def _secret_headers(self, secret_id: str) -> dict[str, str]:
        """The round's one read of a headers secret (in a thread: Secrets Manager's client blocks)."""
        if secret_id not in self._secret_reads:
            self._secret_reads[secret_id] = self._in_thread(lambda: self._headers(secret_id))
        return await asyncio.shield(self._secret_reads[secret_id])  # a check timing out leaves it to the others

    async def http(self, check: HttpCheck) -> Outcome:
        headers = check.headers
        if check.headers_secret is not None:
            try:
                headers = {**headers, **await self._secret_headers(check.headers_secret)}
            except SecretUnusable as exc:
                return Outcome(False, str(exc)[:200])
        tls: ssl.SSLContext | bool = check.verify_tls
        if check.verify_tls and check.ca_file:
            try:
                tls = tls_context(check.ca_file)
            except OSError as exc:
                return Outcome(False, ca_file_unusable(check.ca_file, exc))
        started = time.perf_counter()
        try:
            async with self._http_session().request(
                check.method,
                check.url,
                headers=headers,
                data=check.body,
                allow_redirects=check.follow_redirects,
                ssl=tls,
                timeout=aiohttp.ClientTimeout(total=check.timeout_s),
            ) as response:
                body = await response.content.read(MAX_BODY)
                status = response.status
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return Outcome(False, f"timeout after {check.timeout_s:g} s")
        except aiohttp.ClientConnectorCertificateError as exc:
            why = (
                getattr(exc.certificate_error, "verify_message", None) or exc.certificate_error
            )  # as TLS checks say it
            return Outcome(False, f"TLS certificate refused: {why}")
        except aiohttp.ClientSSLError as exc:
            return Outcome(False, f"TLS error: {exc}")
        except aiohttp.ClientConnectorError as exc:
            refused = isinstance(exc.os_error, ConnectionRefusedError)
            return Outcome(False, "connection refused" if refused else f"unreachable: {exc.os_error}")
        except aiohttp.ClientError as exc:
            return Outcome(False, f"HTTP error: {type(exc).__name__}: {exc}"[:200])
        elapsed_ms = (time.perf_counter() - started) * 1000
        return judge_http(check, status, body, elapsed_ms)

    def _in_thread(self, work: Callable[[], T]) -> asyncio.Future[T]:
        """Not asyncio's default executor: asyncio.run joins its threads, so one stuck read would hold the round."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(thread_name_prefix="dcwatch-reads")
        return asyncio.get_running_loop().run_in_executor(self._threads, work)

    def _vcenter_read(self, site: str, vcenter: VCenter) -> asyncio.Future[VcenterSnapshot]:
        """The round's one read of the site's vCenter, started by whichever part asks first."""
        # pyVmomi only where a round has a vCenter check: a step that runs service checks never loads it.
        from dcwatch.adapters.vsphere import read_vcenter

        if site not in self._vcenter_reads:

            def read() -> VcenterSnapshot:
                credentials = self._credentials(vcenter.credentials_secret)
                probe = vcenter.probe
                return read_vcenter(
                    vcenter,
                    credentials,
                    vcenter.timeout_s,
                    hosts=probe.hosts,
                    vms=bool(probe.critical_vms),
                    alarms=probe.alarms,
                )

            self._vcenter_reads[site] = self._in_thread(read)
        return self._vcenter_reads[site]

    async def vcenter(self, check: PlannedCheck, vcenter: VCenter) -> Outcome:
        """One part of the vCenter check; a failed login or read fails every part with the same reason."""
        try:
            # Shielded: a part that times out must not cancel the read the other parts share.
            snapshot = await asyncio.shield(self._vcenter_read(check.site, vcenter))
        except Exception as exc:  # noqa: BLE001 - any failure to log in or read is the check's outcome
            return Outcome(False, (getattr(exc, "msg", None) or str(exc) or type(exc).__name__)[:200])
        return judge_part(check.part, vcenter.probe, snapshot)

    async def aclose(self) -> None:
        reads: list[asyncio.Future[Any]] = [*self._vcenter_reads.values(), *self._secret_reads.values()]
        for read in reads:
            read.cancel()  # a read nobody waits for any more; its thread ends at its socket timeout
        self._vcenter_reads.clear()
        self._secret_reads.clear()
        if self._threads is not None:
            self._threads.shutdown(wait=False, cancel_futures=True)
            self._threads = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._lookups.close()


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


async def tcp_check(check: TcpCheck, connect: Connect) -> Outcome:
    try:
        reader, writer = await connect(check.host, check.port)
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


def ca_file_unusable(ca_file: str | None, exc: OSError) -> str:
    return f"ca_file {ca_file!r} unusable: {exc.strerror or exc}"[:200]


async def peer_not_after(check: TlsCheck, context: ssl.SSLContext, connect: Connect) -> float:
    """Handshake (chain and name verified by `context`); the leaf certificate's notAfter in epoch seconds."""
    _, writer = await connect(check.host, check.port, ssl=context, server_hostname=check.server_name or check.host)
    try:
        certificate = writer.get_extra_info("peercert")
    finally:
        writer.close()
        with suppress(OSError):
            await writer.wait_closed()
    return ssl.cert_time_to_seconds(certificate["notAfter"])


async def tls_check(check: TlsCheck, connect: Connect) -> Outcome:
    try:
        context = tls_context(check.ca_file)
    except OSError as exc:
        return Outcome(False, ca_file_unusable(check.ca_file, exc))
    try:
        try:
            not_after = await peer_not_after(check, context, connect)
        except ssl.SSLCertVerificationError as exc:
            if exc.verify_code != X509_V_ERR_CERT_HAS_EXPIRED:
                raise
            # Only the clock failed: verify again without it to learn whether the leaf expired, and when.
            not_after = await peer_not_after(check, tls_context(check.ca_file, check_time=False), connect)
            if not_after > time.time():
                raise exc from None  # the leaf is valid; a CA certificate in its chain has expired
    except ssl.SSLCertVerificationError as exc:
        return Outcome(False, f"TLS certificate refused: {exc.verify_message}")
    except ssl.SSLError as exc:
        return Outcome(False, f"TLS error: {exc.reason or exc}")
    except ConnectionRefusedError:
        return Outcome(False, "connection refused")
    except OSError as exc:
        return Outcome(False, f"unreachable: {exc.strerror or exc}")
    return judge_expiry(check, not_after - time.time())


def judge_expiry(check: TlsCheck, seconds_left: float) -> Outcome:
    """Whole days left, rounded down: a certificate with 6 d 23 h left has 6 days."""
    if seconds_left < 0:
        return Outcome(False, f"cert expired {math.floor(-seconds_left / DAY_S)} d ago")
    days = math.floor(seconds_left / DAY_S)
    if days < check.critical_days:
        return Outcome(False, f"cert expires in {days} d")
    if days < check.warn_days:
        return Outcome(False, f"cert expires in {days} d", warning=True)
    return Outcome(True)


def resolver_address(text: str) -> tuple[str, int]:
    """'ip', 'ip:port' or '[ipv6]:port' as (ip, port); ValueError for anything else."""
    with suppress(ValueError):
        return str(ipaddress.ip_address(text)), 53
    host, _, port = text.rpartition(":")
    number = int(port)
    if not 1 <= number <= 65535:
        raise ValueError(f"port {number} out of range")
    return str(ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))), number


def dns_answer_text(rdata: dns.rdata.Rdata) -> str:
    """An answer as people write it in `expect`: no trailing dot, lower case, TXT without quotes."""
    import dns.rdatatype

    if rdata.rdtype == dns.rdatatype.TXT:
        text = b"".join(getattr(rdata, "strings", ())).decode("utf-8", errors="replace")
    else:
        text = rdata.to_text()
    return text.strip().rstrip(".").lower()


async def dns_check(check: DnsCheck) -> Outcome:
    # dnspython loads with the first DNS check: most rounds and the steps that probe have none.
    import dns.asyncresolver
    import dns.exception
    import dns.resolver

    try:
        host, port = resolver_address(check.resolver)
    except ValueError:
        return Outcome(False, f"resolver {check.resolver!r} is not 'ip' or 'ip:port'")
    resolver = dns.asyncresolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    resolver.timeout = resolver.lifetime = check.timeout_s
    try:
        answer = await resolver.resolve(check.query, check.record_type, search=False)
    except dns.resolver.NXDOMAIN:
        return Outcome(False, "NXDOMAIN")
    except dns.resolver.NoAnswer:
        return Outcome(False, "no answer")
    except dns.resolver.LifetimeTimeout:
        return Outcome(False, f"timeout after {check.timeout_s:g} s")
    except dns.resolver.NoNameservers as exc:
        # errors: (server, tcp, port, rcode text or exception, response) per server tried
        why = "; ".join(dict.fromkeys(str(error[3]) for error in exc.kwargs.get("errors", []))) or "no answer"
        return Outcome(False, f"resolver failed: {why}"[:200])
    except dns.exception.DNSException as exc:
        return Outcome(False, f"DNS error: {type(exc).__name__}: {exc}"[:200])
    got = sorted({dns_answer_text(rdata) for rdata in answer})
    missing = [value for value in check.expect if value.strip().rstrip(".").lower() not in got]
    if missing:
        return Outcome(False, f"answers {', '.join(got)} lack {', '.join(missing)}"[:200])
    return Outcome(True)


async def probe(
    checks: list[PlannedCheck],
    credentials: CredentialsFor,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    headers: HeadersFor = no_headers_secrets,
    **options: Any,
) -> list[ProbeResult]:
    prober = Prober(credentials, concurrency, headers)
    try:
        return await run_round_async(checks, prober, concurrency=concurrency, **options)
    finally:
        await prober.aclose()


def probe_round(checks: list[PlannedCheck], credentials: CredentialsFor, **options: Any) -> list[ProbeResult]:
    """One round, from synchronous code (handlers, workflow steps)."""
    return asyncio.run(probe(checks, credentials, **options))
