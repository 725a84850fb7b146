"""The vSphere adapter against a real vCenter simulator (vcsim) through pyvmomi."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import VsphereInventory, vcenter_login_check
from dcwatch.config import VCenter
from dcwatch.errors import TransientError, VcenterRefused, VcenterUnavailable, VcenterUnreachable
from dcwatch.local.cloud import free_port

pytestmark = pytest.mark.integration


def await_tasks(inventory: VsphereInventory, task_ids: list[str], timeout_s: float = 10) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        states = inventory.task_states(task_ids)
        if all(s.state in ("success", "error") for s in states.values()):
            return states
        time.sleep(0.05)
    raise AssertionError(f"tasks {task_ids} not done in {timeout_s} s")


def test_power_states_name_every_vm_that_exists_and_leave_out_the_rest(vcsim_site):
    site = vcsim_site([("db-1", True), ("web-1", False)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        states = inventory.power_states(["db-1", "web-1", "not-there"])
    assert states == {"db-1": "poweredOn", "web-1": "poweredOff"}


def test_power_on_returns_a_task_per_vm_that_completes_and_skips_vms_already_on(vcsim_site):
    site = vcsim_site([("db-1", True), ("web-1", False), ("web-2", False)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        tasks = inventory.power_on(["db-1", "web-1", "web-2"])
        assert sorted(tasks) == ["web-1", "web-2"]
        states = await_tasks(inventory, list(tasks.values()))
        assert {s.state for s in states.values()} == {"success"}
        assert inventory.power_states(["web-1", "web-2"]) == {"web-1": "poweredOn", "web-2": "poweredOn"}
        assert inventory.power_on(["web-1", "web-2"]) == {}


def test_power_on_of_an_unknown_vm_names_it(vcsim_site):
    site = vcsim_site([("db-1", False)])
    with (
        VsphereInventory.connect(site.vcenter, site.credentials) as inventory,
        pytest.raises(VcenterUnavailable, match="ghost"),
    ):
        inventory.power_on(["db-1", "ghost"])


def test_login_check_proves_vcenter_answers_and_accepts_the_credentials(vcsim_site):
    site = vcsim_site()
    assert "vCenter" in vcenter_login_check(site.vcenter, site.credentials, 5)


def test_a_wrong_password_is_a_refused_login_never_an_unreachable_vcenter(vcsim_site):
    site = vcsim_site()
    with pytest.raises(VcenterRefused, match="refused the login of tester") as refused:
        vcenter_login_check(site.vcenter, Credentials(site.credentials.username, "wrong"), 5)
    assert not isinstance(refused.value, VcenterUnreachable | TransientError)


def test_a_closed_port_is_an_unreachable_vcenter_and_named():
    vcenter = VCenter(url=f"http://127.0.0.1:{free_port()}/sdk", credentials_secret="x")
    with pytest.raises(VcenterUnreachable, match=r"vCenter http://127.0.0.1:\d+/sdk unreachable: .*refused"):
        vcenter_login_check(vcenter, Credentials("u", "p"), 2)


def test_a_name_that_does_not_resolve_is_an_unreachable_vcenter():
    vcenter = VCenter(url="http://vcenter.dcwatch-test.invalid/sdk", credentials_secret="x")
    with pytest.raises(VcenterUnreachable, match="vcenter.dcwatch-test.invalid/sdk unreachable"):
        vcenter_login_check(vcenter, Credentials("u", "p"), 2)


def test_a_stopped_simulator_is_an_unreachable_vcenter(vcsim_site):
    site = vcsim_site()
    site.process.stop()
    with pytest.raises(VcenterUnreachable):
        vcenter_login_check(site.vcenter, site.credentials, 2)


@contextmanager
def loopback_vcenter(handler: type[BaseHTTPRequestHandler], scheme: str = "http") -> Iterator[VCenter]:
    """An HTTP server on a free loopback port standing where a vCenter would, for as long as the block runs."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield VCenter(url=f"{scheme}://127.0.0.1:{httpd.server_address[1]}/sdk", credentials_secret="x")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_a_failed_tls_handshake_is_a_refusal_not_an_unreachable_vcenter():
    # A port that accepts TCP and answers the TLS client hello with plain HTTP
    plain = loopback_vcenter(BaseHTTPRequestHandler, scheme="https")
    with plain as vcenter, pytest.raises(VcenterRefused, match="refused the TLS handshake"):
        vcenter_login_check(vcenter, Credentials("u", "p"), 2)


@contextmanager
def vcenter_silent_after_the_version_lookup(versions: bytes, hold_s: float = 5) -> Iterator[VCenter]:
    """A loopback endpoint that serves vCenter's own vimServiceVersions.xml, then never answers the login."""
    released = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Length", str(len(versions)))
            self.end_headers()
            self.wfile.write(versions)

        def do_POST(self) -> None:  # noqa: N802
            released.wait(hold_s)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            return

    with loopback_vcenter(Handler) as vcenter:
        try:
            yield vcenter
        finally:
            released.set()  # the held login returns before the server stops


def test_a_vcenter_that_never_answers_the_login_is_transient_within_the_timeout(vcsim_site):
    site = vcsim_site()
    with urllib.request.urlopen(f"{site.vcenter.url}/vimServiceVersions.xml", timeout=5) as answer:
        versions = answer.read()
    with vcenter_silent_after_the_version_lookup(versions) as silent:
        started = time.monotonic()
        with pytest.raises(TransientError, match="connected, then (failed: timed out|did not answer within 1 s)"):
            vcenter_login_check(silent, Credentials("u", "p"), 1)
        assert time.monotonic() - started < 2.5, "the login gave up at its timeout, not the server's hold"
