"""HTTP checks against real HTTP(S) servers on loopback: status, body, regex, conditions, TLS, timeouts."""

from __future__ import annotations

import json
import re
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import trustme

from dcwatch.adapters.probers import probe_round
from dcwatch.config import HttpCheck
from dcwatch.detection.checks import PlannedCheck

pytestmark = pytest.mark.integration

ROUTES = {
    "/health": (200, "text/plain", "OK shop"),
    "/broken": (503, "text/plain", "maintenance"),
    "/mirror": (200, "application/json", json.dumps({"mirror": {"state": "in-sync", "lag_seconds": 3}})),
    "/mirror-late": (200, "application/json", json.dumps({"mirror": {"state": "syncing", "lag_seconds": 900}})),
    "/moved": (302, "text/plain", ""),
}


SLOW_S = {"/slow": 1.5, "/sluggish": 0.3}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        time.sleep(SLOW_S.get(self.path, 0))
        status, kind, body = ROUTES.get(self.path, (200, "text/plain", "slow but fine"))
        self._answer(status, kind, body.encode(), location="/health" if self.path == "/moved" else None)

    def do_POST(self) -> None:  # noqa: N802
        """Echoes what it received: method, headers (names in lower case) and body, as JSON."""
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length).decode("utf-8", errors="replace")
        echo = {"method": self.command, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": received}
        self._answer(200, "application/json", json.dumps(echo).encode())

    def _answer(self, status: int, kind: str, data: bytes, location: str | None = None) -> None:
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class LoopbackServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # clients hanging up early is what timeout tests do
            super().handle_error(request, client_address)


class TlsServer(LoopbackServer):
    """HTTPS: the handshake happens in the connection's own thread, so a client that refuses it costs nothing."""

    def __init__(self, context: ssl.SSLContext):
        super().__init__()
        self.context = context

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(5)
        with self.context.wrap_socket(request, server_side=True) as tls:
            super().finish_request(tls, client_address)


@contextmanager
def serving(httpd: ThreadingHTTPServer) -> Iterator[int]:
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield int(httpd.server_address[1])
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with serving(LoopbackServer()) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def tls_server() -> Iterator[str]:
    """HTTPS with a certificate for 127.0.0.1 from a CA of the test's own, which no system trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(context)
    with serving(TlsServer(context)) as port:
        yield f"https://127.0.0.1:{port}"


def run(**fields) -> tuple[bool, str]:
    check = HttpCheck(name="c", **fields)
    (result,) = probe_round(
        [PlannedCheck("dc-a", "c", "shop", True, check.timeout_s, check)],
        lambda secret: (_ for _ in ()).throw(LookupError(secret)),
        vantage="test",
        round_id="r",
    )
    return result.ok, result.reason


def test_a_healthy_answer_passes(server):
    assert run(url=f"{server}/health", body_contains="OK") == (True, "")


def test_an_unexpected_status_is_named(server):
    assert run(url=f"{server}/broken") == (False, "status 503")
    assert run(url=f"{server}/broken", expect_status=[503]) == (True, "")


def test_missing_body_text_and_a_regex_mismatch_are_named(server):
    assert run(url=f"{server}/health", body_contains="READY") == (False, "body missing 'READY'")
    assert run(url=f"{server}/health", body_regex=r"^OK \w+$") == (True, "")
    assert run(url=f"{server}/health", body_regex=r"^READY") == (False, "body does not match /^READY/")


def test_a_storage_mirror_in_sync_passes_and_one_lagging_fails_with_the_numbers(server):
    conditions = ["[STATUS] == 200", "[BODY].mirror.state == in-sync", "[BODY].mirror.lag_seconds < 60"]
    assert run(url=f"{server}/mirror", conditions=conditions) == (True, "")
    ok, reason = run(url=f"{server}/mirror-late", conditions=conditions)
    assert not ok
    assert reason == "[BODY].mirror.state == in-sync: got syncing; [BODY].mirror.lag_seconds < 60: got 900"


def test_a_redirect_is_the_answer_unless_following_is_asked_for(server):
    assert run(url=f"{server}/moved") == (False, "status 302")
    assert run(url=f"{server}/moved", follow_redirects=True, body_contains="OK") == (True, "")


def test_a_slow_answer_fails_with_timeout(server):
    assert run(url=f"{server}/slow", timeout_s=0.3) == (False, "timeout after 0.3 s")


def test_a_closed_port_is_connection_refused():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert run(url=f"http://127.0.0.1:{port}/") == (False, "connection refused")


def test_a_certificate_from_an_untrusted_ca_is_refused_because_tls_is_verified_by_default(tls_server):
    assert run(url=f"{tls_server}/health") == (False, "TLS certificate refused: unable to get local issuer certificate")


def test_verify_tls_false_accepts_the_same_certificate_and_judges_the_answer(tls_server):
    assert run(url=f"{tls_server}/health", verify_tls=False, body_contains="OK") == (True, "")
    assert run(url=f"{tls_server}/broken", verify_tls=False) == (False, "status 503")


def test_a_post_sends_its_body_and_headers_and_conditions_judge_the_echo(server):
    check = {
        "url": f"{server}/echo",
        "method": "POST",
        "headers": {"X-Probe": "dcwatch", "Content-Type": "application/json"},
        "body": '{"ping": 1}',
    }
    conditions = [
        "[BODY].method == POST",
        "[BODY].headers.x-probe == dcwatch",
        "[BODY].headers.content-type == application/json",
        '[BODY].body == {"ping": 1}',
    ]
    assert run(**check, conditions=conditions) == (True, "")
    ok, reason = run(**check, conditions=["[BODY].headers.x-probe == someone-else"])
    assert (ok, reason) == (False, "[BODY].headers.x-probe == someone-else: got dcwatch")


def test_response_time_conditions_pass_under_the_bound_and_fail_over_it_with_the_time_taken(server):
    assert run(url=f"{server}/sluggish", conditions=["[RESPONSE_TIME] < 5000"]) == (True, "")
    ok, reason = run(url=f"{server}/sluggish", conditions=["[RESPONSE_TIME] < 100"])
    assert not ok
    took = re.fullmatch(r"\[RESPONSE_TIME\] < 100: got ([0-9.]+)", reason)
    assert took and 300 <= float(took.group(1)) < 5000, reason
