"""The vSphere adapter against a real vCenter simulator (vcsim) through pyvmomi."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import (
    VsphereInventory,
    log_out_idle_sessions,
    reused_session,
    vcenter_login_check,
    vcenter_session,
)
from dcwatch.config import VCenter
from dcwatch.errors import TransientError, VcenterRefused, VcenterUnavailable, VcenterUnreachable
from dcwatch.local.cloud import free_port
from dcwatch.local.vcsim import create_vms, guests_named, report_guest_ips
from dcwatch.ports import GuestState, TaskState
from dcwatch.recovery.state import utcnow
from dcwatch.recovery.waits import wait_for

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


def report_ip(site, vm: str, ip: str) -> None:
    """The simulated guest's VMware Tools reporting its IP, from a session of its own."""
    with vcenter_session(site.vcenter, site.credentials) as si:
        found = guests_named(si, [vm])
        report_guest_ips(si, {vm: found[vm][0]}, {vm: ip})


def after(seconds: float, action) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_a_watch_sees_the_vms_and_tasks_as_they_are_at_first(vcsim_site):
    site = vcsim_site([("db-1", True), ("web-1", False)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory:
        tasks = inventory.power_on(["web-1"])
        await_tasks(inventory, list(tasks.values()))
        with inventory.watch(["db-1", "web-1", "ghost"], list(tasks.values())) as watch:
            seen = watch.current()
    assert {vm: g.power for vm, g in seen.guests.items()} == {"db-1": "poweredOn", "web-1": "poweredOn"}
    assert seen.tasks == {tasks["web-1"]: TaskState("success")}


def test_a_watch_answers_when_a_vm_powers_on_not_at_its_timeout(vcsim_site):
    site = vcsim_site([("web-1", False)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory, inventory.watch(["web-1"], []) as watch:
        assert watch.current().guests["web-1"].power == "poweredOff"
        with VsphereInventory.connect(site.vcenter, site.credentials) as other:
            timer = after(0.5, lambda: other.power_on(["web-1"]))
            begun = time.monotonic()
            seen = watch.changed(5)
            timer.join()
    assert seen.guests["web-1"].power == "poweredOn"
    assert time.monotonic() - begun < 2, "WaitForUpdatesEx answered with the change"


def test_a_watch_answers_when_a_guest_reports_its_ip(vcsim_site):
    site = vcsim_site([("web-1", True)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory, inventory.watch(["web-1"], []) as watch:
        assert not watch.current().guests["web-1"].up
        timer = after(0.5, lambda: report_ip(site, "web-1", "192.0.2.7"))
        begun = time.monotonic()
        seen = wait_for(watch, lambda s: s.guests["web-1"].up, utcnow() + timedelta(seconds=5), utcnow)
        timer.join()
    assert seen.guests["web-1"] == GuestState("poweredOn", "gray", "192.0.2.7")
    assert time.monotonic() - begun < 2


def test_a_watch_that_sees_no_change_returns_what_it_saw_at_its_timeout(vcsim_site):
    site = vcsim_site([("web-1", False)])
    with VsphereInventory.connect(site.vcenter, site.credentials) as inventory, inventory.watch(["web-1"], []) as watch:
        begun = time.monotonic()
        seen = watch.changed(1)
    assert seen.guests["web-1"].power == "poweredOff"
    assert 0.9 < time.monotonic() - begun < 3


def session_key(si) -> str:
    return str(si.content.sessionManager.currentSession.key)


def test_a_warm_step_reuses_its_vcenter_session_and_logs_in_again_once_vcenter_forgot_it(vcsim_site):
    site = vcsim_site([("db-1", True)])
    log_out_idle_sessions()
    with reused_session(site.vcenter, site.credentials) as si:
        first = session_key(si)
    with reused_session(site.vcenter, site.credentials) as si:
        assert session_key(si) == first, "the second use found the first one's session"
        si.content.sessionManager.Logout()  # vCenter forgets it (expiry, a restart, an operator)
    with VsphereInventory.reused(site.vcenter, site.credentials) as inventory:
        assert inventory.power_states(["db-1"]) == {"db-1": "poweredOn"}
    with reused_session(site.vcenter, site.credentials) as si:
        assert session_key(si) != first
    log_out_idle_sessions()


def test_a_later_step_finds_a_vm_recreated_or_renamed_meanwhile_by_its_name_and_watches_that_one(vcsim_site):
    # Given a step found the VMs, then web-1 was deleted and created again, and db-1 renamed, swapping names
    site = vcsim_site([("db-1", False), ("web-1", False), ("web-2", False)])
    with VsphereInventory.reused(site.vcenter, site.credentials) as inventory:
        assert inventory.power_states(["db-1", "web-1", "web-2"]) == dict.fromkeys(
            ["db-1", "web-1", "web-2"], "poweredOff"
        )
        first_web = inventory._refs["web-1"]._moId
    with vcenter_session(site.vcenter, site.credentials) as si:
        found = guests_named(si, ["web-1", "web-2"])
        await_task(found["web-1"][0].Destroy_Task())
        await_task(found["web-2"][0].Rename_Task("web-2-old"))
    create_vms(site.vcenter, site.credentials, [("web-1", True), ("web-2", True)])

    # When a later step of the same warm environment reads and watches them, then it sees the VMs named so now
    with VsphereInventory.reused(site.vcenter, site.credentials) as inventory:
        assert inventory.power_states(["web-1", "web-2"]) == {"web-1": "poweredOn", "web-2": "poweredOn"}
        assert inventory._refs["web-1"]._moId != first_web
        with inventory.watch(["web-1", "web-2"], []) as watch:
            seen = watch.current()
    assert {vm: g.power for vm, g in seen.guests.items()} == {"web-1": "poweredOn", "web-2": "poweredOn"}
    log_out_idle_sessions()


def await_task(task) -> None:
    deadline = time.monotonic() + 10
    while task.info.state not in ("success", "error") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert task.info.state == "success", task.info.error


def test_a_session_kept_for_reuse_still_tells_an_unreachable_vcenter_and_a_refused_login(vcsim_site):
    site = vcsim_site([("db-1", True)])
    log_out_idle_sessions()
    with reused_session(site.vcenter, site.credentials):
        pass
    site.process.stop()
    with pytest.raises(VcenterUnreachable), reused_session(site.vcenter, site.credentials):
        pass
    site.process.credentials = Credentials(site.credentials.username, "rotated")
    site.process.start()
    with pytest.raises(VcenterRefused), reused_session(site.vcenter, site.credentials):
        pass
    log_out_idle_sessions()
