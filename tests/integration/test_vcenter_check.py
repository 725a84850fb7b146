"""The vCenter check against real vCenter simulators (vcsim), through pyvmomi and the probe engine.

What vcsim (govmomi 0.24) can and cannot show, found in its source and confirmed here:
- every VM reports `guestHeartbeatStatus` gray, powered on or not: it simulates no VMware Tools, so a
  running critical VM fails with `tools heartbeat gray` (a green heartbeat is covered by unit tests);
- `DisconnectHost_Task` is not implemented; a host added with `asConnected=False` is disconnected;
- free space is the real filesystem's at start, minus the capacity of virtual disks created later;
- there is no alarm manager, so no alarm can be triggered: the alarms part is seen passing here and
  judged with triggered alarms in the unit tests.
"""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from pyVmomi import vim

from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import vcenter_session
from dcwatch.config import Config, VCenter, parse_config
from dcwatch.detection.checks import vcenter_checks
from dcwatch.events import ProbeResult
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.vcsim import _await_task
from tests.integration.conftest import Site

pytestmark = pytest.mark.integration

KiB = 1024


def config_for(*sites: Any, timeout_s: float = 5, datacenter: str | None = None, **probe: Any) -> Config:
    """The demo config with its sites' vCenters replaced by these simulators, probed as `probe` says."""
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    for entry, site in zip(doc["sites"], sites, strict=False):
        entry["vcenter"] = {
            "url": site.vcenter.url,
            "credentials_secret": site.vcenter.credentials_secret,
            "timeout_s": timeout_s,
            "datacenter": datacenter,
            "probe": probe,
        }
    return parse_config(doc, "vcenter-test.yaml")


def run_vcenter_round(config: Config, *sites: Any, names: tuple[str, ...] = ("dc-a",)) -> dict[str, ProbeResult]:
    secrets = {site.vcenter.credentials_secret: site.credentials for site in sites}
    planned = [check for name in names for check in vcenter_checks(config, name)]
    results = probe_round(planned, secrets.__getitem__, vantage="test", round_id="r1", deadline_s=30)
    return {f"{r.site}/{r.check}": r for r in results}


@contextmanager
def admin(site: Any) -> Iterator[Any]:
    """A session of the test's own, to change the simulated site the way an operator would."""
    with vcenter_session(site.vcenter, site.credentials) as si:
        yield si


def cluster_of(si: Any) -> Any:
    return si.content.rootFolder.childEntity[0].hostFolder.childEntity[0]


def fill_datastore(si: Any, free_pct: float) -> str:
    """Provision a VM disk so large that only `free_pct` of the first datastore stays free."""
    datacenter = si.content.rootFolder.childEntity[0]
    datastore = datacenter.datastore[0]
    summary = datastore.summary
    disk_kib = (summary.freeSpace - int(summary.capacity * free_pct / 100)) // KiB
    disk = vim.vm.device.VirtualDisk(
        key=-1,
        unitNumber=0,
        capacityInKB=disk_kib,
        backing=vim.vm.device.VirtualDisk.FlatVer2BackingInfo(diskMode="persistent", fileName=f"[{datastore.name}]"),
    )
    spec = vim.vm.ConfigSpec(
        name="filler",
        guestId="otherGuest64",
        files=vim.vm.FileInfo(vmPathName=f"[{datastore.name}]"),
        deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", fileOperation="create", device=disk)],
    )
    _await_task(datacenter.vmFolder.CreateVM_Task(config=spec, pool=cluster_of(si).resourcePool), "create filler")
    return str(datastore.name)


def logouts(site: Any) -> int:
    """Sessions that ended on this vCenter so far, counted from its own event log."""
    with admin(site) as si:
        spec = vim.event.EventFilterSpec(eventTypeId=["UserLogoutSessionEvent"])
        return len(si.content.eventManager.QueryEvents(spec))


def test_a_healthy_vcenter_passes_login_hosts_datastores_and_alarms(vcsim_site):
    site = vcsim_site()
    results = run_vcenter_round(config_for(site), site)
    assert sorted(results) == ["dc-a/vcenter", "dc-a/vcenter-alarms", "dc-a/vcenter-datastores", "dc-a/vcenter-hosts"]
    assert [(k, r.reason) for k, r in results.items() if not r.ok] == []
    assert results["dc-a/vcenter-alarms"].critical is False, "alarms only ever warn"
    assert all(r.critical for k, r in results.items() if k != "dc-a/vcenter-alarms")


def test_the_read_covers_the_configured_datacenter_and_a_missing_one_fails_every_part(vcsim_site):
    site = vcsim_site([("dns-1", False)])
    scoped = run_vcenter_round(config_for(site, datacenter="DC0", critical_vms=["dns-1"]), site)
    assert scoped["dc-a/vcenter"].ok and scoped["dc-a/vcenter-vms"].reason == "vm dns-1 poweredOff"

    missing = run_vcenter_round(config_for(site, datacenter="DC9"), site)
    assert {r.reason for r in missing.values()} == {f"vCenter {site.vcenter.url}: datacenter 'DC9' not found"}


def test_critical_vms_that_are_off_missing_or_without_tools_fail_naming_each(vcsim_site):
    site = vcsim_site([("dns-1", True), ("backup-proxy", False)])
    config = config_for(site, critical_vms=["dns-1", "backup-proxy", "witness"])
    vms = run_vcenter_round(config, site)["dc-a/vcenter-vms"]
    assert (vms.ok, vms.critical) == (False, True)
    # vcsim simulates no VMware Tools: a running VM's heartbeat is gray, which is a failure.
    assert vms.reason == "vm dns-1 tools heartbeat gray; vm backup-proxy poweredOff; vm witness not found"


def test_a_host_in_unexpected_maintenance_and_a_disconnected_host_fail_the_hosts_part(vcsim_site):
    site = vcsim_site()
    with admin(site) as si:
        cluster = cluster_of(si)
        first = cluster.host[0]
        _await_task(first.EnterMaintenanceMode_Task(timeout=0), "enter maintenance")
        spec = vim.host.ConnectSpec(hostName="esx-new", userName="root", password="unused", force=True)
        _await_task(cluster.AddHost_Task(spec=spec, asConnected=False), "add a disconnected host")
        maintenance = first.name

    hosts = run_vcenter_round(config_for(site), site)["dc-a/vcenter-hosts"]
    assert not hosts.ok and hosts.reason == f"host {maintenance} in maintenance; host esx-new disconnected"

    expected = config_for(site, expected_maintenance=[maintenance])
    assert run_vcenter_round(expected, site)["dc-a/vcenter-hosts"].reason == "host esx-new disconnected"


def test_a_nearly_full_datastore_fails_with_its_free_share_below_the_threshold(vcsim_site):
    site = vcsim_site()
    with admin(site) as si:
        datastore = fill_datastore(si, free_pct=5)

    datastores = run_vcenter_round(config_for(site, datastore_min_free_pct=10), site)["dc-a/vcenter-datastores"]
    assert (datastores.ok, datastores.reason) == (False, f"datastore {datastore} 5.0 % free < 10 %")
    assert run_vcenter_round(config_for(site, datastore_min_free_pct=4), site)["dc-a/vcenter-datastores"].ok


def test_one_round_opens_exactly_one_vcenter_session_per_site_whatever_the_number_of_parts(vcsim_site):
    a, b = vcsim_site([("dns", True)], name="a"), vcsim_site([("dns", True)], name="b")
    config = config_for(a, b, critical_vms=["dns"])
    before = {"a": logouts(a), "b": logouts(b)}

    results = run_vcenter_round(config, a, b, names=("dc-a", "dc-b"))

    for name in ("dc-a", "dc-b"):
        assert len([k for k in results if k.startswith(f"{name}/")]) == 5, "login, hosts, vms, datastores, alarms"
    # Each `logouts` call also opens (and ends) one session of its own: hence the + 1.
    assert logouts(a) == before["a"] + 1 + 1
    assert logouts(b) == before["b"] + 1 + 1
    with admin(a) as si:
        assert len(si.content.sessionManager.sessionList) == 1, "the round left no session behind"


def test_a_stopped_vcenter_fails_every_part_with_the_same_short_reason(vcsim_site):
    site = vcsim_site()
    site.process.stop()
    results = run_vcenter_round(config_for(site, critical_vms=["dns-1"]), site)
    assert len(results) == 5 and not any(r.ok for r in results.values())
    assert len({r.reason for r in results.values()}) == 1
    assert "unreachable" in results["dc-a/vcenter"].reason


def test_a_refused_login_fails_every_part_with_the_refusal(vcsim_site):
    site = vcsim_site()
    wrong = type(site)(site.vcenter, Credentials(site.credentials.username, "wrong"), site.process)
    results = run_vcenter_round(config_for(wrong), wrong)
    assert {r.reason for r in results.values()} == {f"vCenter {site.vcenter.url} refused the login of tester"}


def test_a_slow_vcenter_fails_every_part_after_its_timeout(vcsim_site):
    site = vcsim_site(delay_ms=1500)
    results = run_vcenter_round(config_for(site, timeout_s=0.5), site)
    assert {r.reason for r in results.values()} == {"timeout after 0.5 s"}
    assert all(r.latency_ms < 1500 for r in results.values()), "each part cost only its timeout"


class SilentVcenter:
    """A loopback port that accepts one connection and never answers, for `hold_s` at most.

    It notes how long after accepting the client hung up: the proof that a probe's thread ends by itself.
    """

    def __init__(self, hold_s: float):
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.hold_s = hold_s
        self.hung_up_after_s: float | None = None
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        until = time.monotonic() + self.hold_s
        try:
            self._server.settimeout(self.hold_s)
            client, _ = self._server.accept()
        except OSError:
            return
        accepted = time.monotonic()
        with client:
            while (left := until - time.monotonic()) > 0:
                client.settimeout(left)
                try:
                    if not client.recv(4096):
                        self.hung_up_after_s = time.monotonic() - accepted
                        return
                except OSError:
                    return

    def __enter__(self) -> SilentVcenter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.close()
        self._thread.join(self.hold_s + 1)

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)


def test_a_vcenter_that_accepts_and_stays_silent_cannot_hold_the_round_past_its_deadline():
    with SilentVcenter(hold_s=12) as silent:
        vcenter = VCenter(url=f"http://127.0.0.1:{silent.port}/sdk", credentials_secret="test/silent")
        site = Site(vcenter, Credentials("tester", "secret"), None)  # type: ignore[arg-type]
        config = config_for(site, timeout_s=1)
        started = time.monotonic()
        results = probe_round(
            vcenter_checks(config, "dc-a"),
            {"test/silent": site.credentials}.__getitem__,
            vantage="test",
            round_id="r1",
            deadline_s=2,
        )
        elapsed_s = time.monotonic() - started
        silent.join(timeout_s=3)

        assert elapsed_s < 3, f"the round took {elapsed_s:.1f} s against a deadline of 2 s"
        assert {r.reason for r in results} == {"timeout after 1 s"} and not any(r.ok for r in results)
        assert silent.hung_up_after_s is not None and silent.hung_up_after_s < 3, "the probe's socket gave up by itself"


def test_a_vcenter_read_stuck_in_its_thread_costs_the_round_only_its_deadline(vcsim_site):
    site = vcsim_site()
    released = threading.Event()

    def stuck_secrets(secret: str) -> Credentials:
        released.wait(10)  # a secrets lookup that hangs, inside the read's thread, where no timeout reaches
        return site.credentials

    try:
        started = time.monotonic()
        results = probe_round(
            vcenter_checks(config_for(site, timeout_s=1), "dc-a"),
            stuck_secrets,
            vantage="test",
            round_id="r1",
            deadline_s=2,
        )
        elapsed_s = time.monotonic() - started
    finally:
        released.set()
    assert elapsed_s < 3, f"the round took {elapsed_s:.1f} s against a deadline of 2 s"
    assert {r.reason for r in results} == {"timeout after 1 s"}
