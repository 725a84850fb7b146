"""The TLS, DNS and TCP probers against real loopback peers, run through the probe engine.

Certificates are made at test time (trustme), the DNS server is a small authoritative one built on
dnspython's message parsing, and every server runs on a private event loop that the fixture stops.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import ssl
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
import trustme
import yaml

from dcwatch.adapters.probers import judge_expiry, probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, ConfigError, DnsCheck, TcpCheck, TlsCheck, parse_config
from dcwatch.detection.checks import Outcome, site_checks
from dcwatch.events import ProbeResult
from dcwatch.local.cloud import free_port
from dcwatch.local.demo import DEMO_CONFIG
from tests.integration.conftest import STUCK_NAME

pytestmark = pytest.mark.integration

SERVER_NAME = "shop.example.test"
ZONE: dict[str, dict[str, list[str]]] = {
    "shop.example.test.": {"A": ["127.0.20.1", "127.0.20.2"]},
    "alias.example.test.": {"CNAME": ["shop.example.test."]},
    "mail.example.test.": {"MX": ["10 mx1.example.test."], "TXT": ['"v=spf1 -all"']},
    "broken.example.test.": {},
}


def demo_doc() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))


def with_site_checks(*checks: dict[str, Any]) -> Config:
    """The demo config with these entries under the first site's `checks:`, as an operator writes them."""
    doc = demo_doc()
    doc["sites"][0]["checks"] = list(checks)
    return parse_config(doc, "demo-with-checks.yaml")


def no_credentials(secret: str) -> Credentials:
    raise AssertionError(f"TLS, DNS and TCP checks need no credentials, asked for {secret}")


def probe_one(check: dict[str, Any]) -> ProbeResult:
    """One check, planned from the config and run in a round of the engine."""
    config = with_site_checks(check)
    [result] = probe_round(site_checks(config, "dc-a"), no_credentials, vantage="test", round_id="r1", deadline_s=10)
    return result


class LoopbackPeers:
    """Servers on 127.0.0.1 on a private event loop in a thread; `stop()` closes them all."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.set_exception_handler(self._quiet_about_refused_handshakes)
        self.thread = threading.Thread(target=self.loop.run_forever, name="loopback-peers", daemon=True)
        self.thread.start()
        self.servers: list[asyncio.Server] = []
        self.transports: list[asyncio.BaseTransport] = []

    def _quiet_about_refused_handshakes(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), ssl.SSLError | ConnectionError):
            loop.default_exception_handler(context)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=5)

    def tcp(self, greeting: bytes = b"", tls: ssl.SSLContext | None = None) -> int:
        """A listener that sends `greeting`, then waits (bounded) for the client to hang up."""

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                writer.write(greeting)
                await writer.drain()
                await asyncio.wait_for(reader.read(), timeout=5)
            except (OSError, TimeoutError):
                pass
            finally:
                writer.close()

        server = self.run(asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls))
        self.servers.append(server)
        return int(server.sockets[0].getsockname()[1])

    def udp(self, protocol: Callable[[], asyncio.DatagramProtocol]) -> int:
        async def open_endpoint() -> asyncio.DatagramTransport:
            transport, _ = await self.loop.create_datagram_endpoint(protocol, local_addr=("127.0.0.1", 0))
            return transport

        transport = self.run(open_endpoint())
        self.transports.append(transport)
        return int(transport.get_extra_info("sockname")[1])

    def stop(self) -> None:
        async def close_all() -> None:
            for transport in self.transports:
                transport.close()
            for server in self.servers:
                server.close()
            await asyncio.gather(*(s.wait_closed() for s in self.servers))

        try:
            self.run(close_all())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            self.loop.close()


@pytest.fixture
def peers() -> Iterator[LoopbackPeers]:
    started = LoopbackPeers()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def serve_certificate(peers: LoopbackPeers, ca: trustme.CA, *, expires_in: timedelta) -> int:
    """A TLS server for shop.example.test whose certificate expires `expires_in` from now."""
    now = datetime.now(UTC)
    leaf = ca.issue_cert(SERVER_NAME, not_before=now - timedelta(days=90), not_after=now + expires_in)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)
    return peers.tcp(tls=context)


def tls(port: int, ca_file: str | None, **options: Any) -> dict[str, Any]:
    return {"kind": "tls", "name": "shop-cert", "host": "127.0.0.1", "port": port, "server_name": SERVER_NAME,
            "ca_file": ca_file, "timeout_s": 3, **options}  # fmt: skip


# An hour on top of the whole days keeps the count exact however long the test takes.
SLACK = timedelta(hours=1)


def test_a_long_lived_certificate_from_a_trusted_ca_passes(peers, ca, ca_file):
    port = serve_certificate(peers, ca, expires_in=timedelta(days=365))
    result = probe_one(tls(port, ca_file))
    assert (result.ok, result.reason, result.kind) == (True, "", "tls")


def test_a_certificate_inside_the_critical_window_fails_the_check_critically(peers, ca, ca_file):
    port = serve_certificate(peers, ca, expires_in=timedelta(days=3) + SLACK)
    result = probe_one(tls(port, ca_file, critical_days=7))
    assert (result.ok, result.critical, result.reason) == (False, True, "cert expires in 3 d")


def test_a_certificate_inside_the_warning_window_is_a_warning_that_decides_nothing(peers, ca, ca_file):
    port = serve_certificate(peers, ca, expires_in=timedelta(days=14) + SLACK)
    result = probe_one(tls(port, ca_file, warn_days=21, critical_days=7))
    assert (result.ok, result.critical, result.reason) == (False, False, "cert expires in 14 d")


def test_an_expired_certificate_says_since_when(peers, ca, ca_file):
    port = serve_certificate(peers, ca, expires_in=-(timedelta(days=2) + SLACK))
    result = probe_one(tls(port, ca_file))
    assert (result.ok, result.critical, result.reason) == (False, True, "cert expired 2 d ago")


def test_a_certificate_from_a_ca_nobody_trusts_is_refused(peers, ca):
    port = serve_certificate(peers, ca, expires_in=timedelta(days=365))
    result = probe_one(tls(port, None))
    assert not result.ok
    assert result.reason == "TLS certificate refused: unable to get local issuer certificate"


def test_a_certificate_for_another_name_is_refused(peers, ca, ca_file):
    port = serve_certificate(peers, ca, expires_in=timedelta(days=365))
    result = probe_one(tls(port, ca_file, server_name="pay.example.test"))
    assert not result.ok
    assert result.reason.startswith("TLS certificate refused: Hostname mismatch")
    assert "pay.example.test" in result.reason


def test_days_are_whole_days_left_and_the_thresholds_are_exclusive():
    check = TlsCheck(kind="tls", name="shop-cert", host="127.0.0.1", warn_days=21, critical_days=7)
    day = 86400
    assert judge_expiry(check, 7 * day - 1) == Outcome(False, "cert expires in 6 d")
    assert judge_expiry(check, 7 * day) == Outcome(False, "cert expires in 7 d", warning=True)
    assert judge_expiry(check, 21 * day) == Outcome(True)
    assert judge_expiry(check, -1) == Outcome(False, "cert expired 0 d ago")


def test_a_tls_port_nobody_listens_on_is_refused():
    result = probe_one(tls(free_port(), None))
    assert (result.ok, result.reason) == (False, "connection refused")


class ZoneServer(asyncio.DatagramProtocol):
    """Authoritative for ZONE over UDP: follows CNAMEs, NXDOMAIN for unknown names, SERVFAIL for broken."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.DatagramTransport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name, wanted = question.name, dns.rdatatype.to_text(question.rdtype)
        while True:
            records = ZONE.get(name.to_text())
            if records is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                break
            if not records:
                response.set_rcode(dns.rcode.SERVFAIL)
                break
            if wanted in records:
                response.answer.append(dns.rrset.from_text_list(name, 60, "IN", wanted, records[wanted]))
                break
            if "CNAME" not in records:
                break
            response.answer.append(dns.rrset.from_text_list(name, 60, "IN", "CNAME", records["CNAME"]))
            name = dns.name.from_text(records["CNAME"][0])
        self.transport.sendto(response.to_wire(), addr)


@pytest.fixture
def resolver(peers) -> str:
    return f"127.0.0.1:{peers.udp(ZoneServer)}"


@pytest.fixture
def silent_resolver() -> Iterator[str]:
    """A UDP port that is bound (so no ICMP refusal comes back) but never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def dns_check(resolver: str, query: str, expect: list[str], **options: Any) -> dict[str, Any]:
    return {"kind": "dns", "name": "shop-dns", "resolver": resolver, "query": query, "expect": expect, **options}


def test_a_name_that_resolves_to_the_expected_address_passes(resolver):
    result = probe_one(dns_check(resolver, "shop.example.test", ["127.0.20.1"]))
    assert (result.ok, result.reason, result.kind) == (True, "", "dns")


def test_an_alias_resolves_through_its_cname_to_the_expected_address(resolver):
    assert probe_one(dns_check(resolver, "alias.example.test.", ["127.0.20.2"])).ok


def test_names_compare_without_trailing_dot_and_case(resolver):
    assert probe_one(dns_check(resolver, "alias.example.test", ["SHOP.example.test."], record_type="CNAME")).ok
    assert probe_one(dns_check(resolver, "mail.example.test", ["10 mx1.example.test"], record_type="MX")).ok
    assert probe_one(dns_check(resolver, "mail.example.test", ["v=spf1 -all"], record_type="TXT")).ok


def test_an_empty_expect_accepts_any_answer(resolver):
    assert probe_one(dns_check(resolver, "shop.example.test", [])).ok


def test_a_missing_expected_answer_is_named_next_to_what_came_back(resolver):
    result = probe_one(dns_check(resolver, "shop.example.test", ["127.0.20.1", "127.0.99.9"]))
    assert (result.ok, result.reason) == (False, "answers 127.0.20.1, 127.0.20.2 lack 127.0.99.9")


def test_an_unknown_name_is_nxdomain(resolver):
    result = probe_one(dns_check(resolver, "gone.example.test", ["127.0.20.1"]))
    assert (result.ok, result.reason) == (False, "NXDOMAIN")


def test_a_name_without_records_of_the_type_is_no_answer(resolver):
    result = probe_one(dns_check(resolver, "shop.example.test", [], record_type="AAAA"))
    assert (result.ok, result.reason) == (False, "no answer")


def test_a_failing_resolver_is_named(resolver):
    result = probe_one(dns_check(resolver, "broken.example.test", []))
    assert (result.ok, result.reason) == (False, "resolver failed: SERVFAIL")


def test_a_resolver_that_never_answers_costs_only_the_check_timeout(silent_resolver):
    result = probe_one(dns_check(silent_resolver, "shop.example.test", ["127.0.20.1"], timeout_s=0.5))
    assert (result.ok, result.reason) == (False, "timeout after 0.5 s")
    assert 400 <= result.latency_ms < 1500


def test_a_resolver_that_is_not_an_address_is_named():
    result = probe_one(dns_check("dns.example.test:53", "shop.example.test", []))
    assert (result.ok, result.reason) == (False, "resolver 'dns.example.test:53' is not 'ip' or 'ip:port'")


def tcp(port: int, **options: Any) -> dict[str, Any]:
    return {"kind": "tcp", "name": "smtp", "host": "127.0.0.1", "port": port, "timeout_s": 2, **options}


def test_a_listener_with_the_expected_banner_passes(peers):
    port = peers.tcp(b"220 smtp ready\r\n")
    result = probe_one(tcp(port, banner="^220"))
    assert (result.ok, result.reason, result.kind) == (True, "", "tcp")


def test_a_listener_without_banner_check_passes_on_connect(peers):
    assert probe_one(tcp(peers.tcp())).ok


def test_a_banner_that_does_not_match_is_quoted(peers):
    port = peers.tcp(b"554 no service\r\n")
    result = probe_one(tcp(port, banner="^220"))
    assert (result.ok, result.reason) == (False, "banner '554 no service' does not match /^220/")


def test_a_closed_port_is_connection_refused():
    result = probe_one(tcp(free_port()))
    assert (result.ok, result.reason) == (False, "connection refused")


def test_tls_dns_and_tcp_checks_parse_from_a_sites_checks_list():
    config = with_site_checks(
        {"kind": "tls", "name": "portal-cert", "host": "portal.example.test", "warn_days": 30},
        {"kind": "dns", "name": "shop-dns", "query": "shop.example.test.", "resolver": "192.0.2.53:5353",
         "record_type": "CNAME", "expect": ["edge.example.test."]},
        {"kind": "tcp", "name": "smtp", "host": "192.0.2.25", "port": 25, "banner": "^220", "severity": "warning"},
    )  # fmt: skip
    tls_check, dns_check, tcp_check = config.site("dc-a").checks
    assert isinstance(tls_check, TlsCheck)
    assert (tls_check.port, tls_check.warn_days, tls_check.critical_days) == (443, 30, 7)
    assert isinstance(dns_check, DnsCheck) and dns_check.record_type == "CNAME"
    assert isinstance(tcp_check, TcpCheck) and not tcp_check.critical
    assert [c.kind for c in site_checks(config, "dc-a")] == ["tls", "dns", "tcp"]


def test_a_tcp_check_without_port_is_a_config_error_naming_its_path():
    with pytest.raises(ConfigError) as raised:
        with_site_checks(
            {"kind": "dns", "name": "shop-dns", "query": "shop.example.test.", "resolver": "192.0.2.53"},
            {"kind": "tcp", "name": "smtp", "host": "192.0.2.25"},
        )
    assert raised.value.problems == [("sites[0].checks[1].port", "Field required")]
    assert "demo-with-checks.yaml: sites[0].checks[1].port: Field required" in str(raised.value)


def probe_timed(*checks: dict[str, Any], deadline_s: float) -> tuple[dict[str, str], float]:
    """The round's reason per check, and how long the round took to come back."""
    began = time.monotonic()
    results = probe_round(
        site_checks(with_site_checks(*checks), "dc-a"), no_credentials, vantage="t", round_id="r", deadline_s=deadline_s
    )
    return {r.check: r.reason for r in results}, time.monotonic() - began


def test_a_name_the_system_resolver_never_answers_fails_its_check_within_the_round(stuck_lookups, peers, ca):
    healthy = peers.tcp()
    stuck = {"host": STUCK_NAME, "timeout_s": 1}
    reasons, took_s = probe_timed(
        {"name": "shop", "url": f"http://{STUCK_NAME}:8080/health", "timeout_s": 1},
        {"kind": "tcp", "name": "smtp", "port": 25, **stuck},
        {"kind": "tls", "name": "shop-cert", **stuck},
        tcp(healthy, name="gateway"),
        deadline_s=5,
    )
    lookup_timed_out = f"unreachable: name lookup of '{STUCK_NAME}' timed out after 0.9 s"
    assert reasons == {"shop": lookup_timed_out, "smtp": lookup_timed_out, "shop-cert": lookup_timed_out, "gateway": ""}
    assert took_s < 5  # not the STUCK_FOR_S a thread of asyncio's own executor would have held the round


def test_a_round_whose_deadline_passes_during_a_stuck_lookup_ends_at_its_deadline(stuck_lookups):
    reasons, took_s = probe_timed(
        {"kind": "tcp", "name": "smtp", "host": STUCK_NAME, "port": 25, "timeout_s": 10}, deadline_s=1
    )
    assert reasons == {"smtp": "timeout: round deadline of 1 s passed"}
    assert took_s < 5
