"""HTTP checks against real HTTP servers on loopback: status, body, regex, conditions, TLS, timeouts."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dcwatch.adapters.probers import probe_round
from dcwatch.checks import PlannedCheck
from dcwatch.config import HttpCheck

pytestmark = pytest.mark.integration

ROUTES = {
    "/health": (200, "text/plain", "OK shop"),
    "/broken": (503, "text/plain", "maintenance"),
    "/mirror": (200, "application/json", json.dumps({"mirror": {"state": "in-sync", "lag_seconds": 3}})),
    "/mirror-late": (200, "application/json", json.dumps({"mirror": {"state": "syncing", "lag_seconds": 900}})),
    "/moved": (302, "text/plain", ""),
}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            time.sleep(1.5)
        status, kind, body = ROUTES.get(self.path, (200, "text/plain", "slow but fine"))
        data = body.encode()
        self.send_response(status)
        if self.path == "/moved":
            self.send_header("Location", "/health")
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


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
