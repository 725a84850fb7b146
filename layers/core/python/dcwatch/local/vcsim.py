"""One govmomi vCenter simulator per site, built from the config with real pyvmomi calls."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pyVmomi import vim

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import call_each, read_properties, vcenter_session
from dcwatch.config import VCenter
from dcwatch.local.children import die_with_parent, wait_for_port
from dcwatch.wiring import REPO_ROOT

BUILT_VCSIM = REPO_ROOT / ".build" / "vcsim"
START_TIMEOUT_S = 15.0
TASK_TIMEOUT_S = 30.0


class VcsimNotFound(RuntimeError):
    pass


GUEST_IP_KEY = "SET.guest.ipAddress"
PRODUCTION_NETWORK = "VM Network"  # vcsim's standard port group on every host: the VMs' own NICs stay on it
SIMULATED_PROPS = ["name", "runtime.powerState", "summary.runtime.bootTime", "guest.ipAddress"]


def find_vcsim() -> str:
    """$DCWATCH_VCSIM, else the one `make vcsim` built, else a `vcsim` on PATH."""
    candidates = [os.environ.get("DCWATCH_VCSIM"), str(BUILT_VCSIM), shutil.which("vcsim")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise VcsimNotFound(
        "no vCenter simulator found: run `make vcsim` (builds .build/vcsim from tools/vcsim), "
        "put a `vcsim` on PATH, or set DCWATCH_VCSIM"
    )


def _loopback_endpoint(url: str) -> tuple[str, int]:
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if not host.startswith("127.") and host not in ("localhost", "::1"):
        raise ValueError(f"the local runtime only serves on loopback; {url} is not a loopback address")
    return host, parsed.port or (443 if parsed.scheme == "https" else 80)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class VcsimProcess:
    """A running simulator for one site; `stop()` is the site's vCenter outage."""

    def __init__(self, site: str, vcenter: VCenter, credentials: Credentials, *, hosts: int = 2, delay_ms: int = 0):
        self.site, self.vcenter, self.credentials = site, vcenter, credentials
        self.host, self.port = _loopback_endpoint(vcenter.url)
        if urlparse(vcenter.url).scheme != "http":
            raise ValueError(f"site {site}: the local runtime's vcsim serves http; use http:// in {vcenter.url}")
        self.hosts, self.delay_ms = hosts, delay_ms
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def _args(self) -> list[str]:
        """upstream vcsim's flags; the login it accepts is `credentials` as they are at start."""
        args = [
            find_vcsim(),
            "-l",
            f"{self.host}:{self.port}",
            "-tls=false",
            "-cluster=1",
            f"-host={self.hosts}",
            "-ds=1",
            "-vm=0",
            f"-username={self.credentials.username}",
            f"-password={self.credentials.password}",
        ]
        return args + ([f"-delay={self.delay_ms}"] if self.delay_ms else [])

    def start(self) -> VcsimProcess:
        if not port_is_free(self.host, self.port):
            raise RuntimeError(f"site {self.site}: {self.host}:{self.port} is already in use; stop what listens there")
        self._process = subprocess.Popen(
            self._args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )
        try:
            wait_for_port(self.host, self.port, START_TIMEOUT_S, self._process)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"site {self.site}: vcsim did not start on {self.host}:{self.port}") from None
        return self

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _await_task(task: Any, what: str) -> Any:
    deadline = time.monotonic() + TASK_TIMEOUT_S
    while task.info.state in (vim.TaskInfo.State.queued, vim.TaskInfo.State.running):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: vCenter task not done after {TASK_TIMEOUT_S:g} s")
        time.sleep(0.02)
    if task.info.state != vim.TaskInfo.State.success:
        raise RuntimeError(f"{what}: {task.info.error.msg if task.info.error else task.info.state}")
    return task.info.result


def add_port_groups(si: Any, names: Iterable[str]) -> None:
    """Each named port group on the datacenter's distributed switch (vcsim's DVS0: every host a member), added
    where missing: a drill's isolated network. One call for every host, as a DVS port group is in vCenter (vcsim's
    HostNetworkSystem.AddPortGroup makes one Network per datacenter and refuses the second host's)."""
    datacenter = si.content.rootFolder.childEntity[0]
    missing = sorted(set(names) - {network.name for network in datacenter.network})
    if missing:
        switch = next(n for n in datacenter.networkFolder.childEntity if isinstance(n, vim.DistributedVirtualSwitch))
        specs = [vim.dvs.DistributedVirtualPortgroup.ConfigSpec(name=name, type="earlyBinding") for name in missing]
        _await_task(switch.AddDVPortgroup_Task(specs), f"add port groups {', '.join(missing)}")


def create_vms(
    vcenter: VCenter, credentials: Credentials, vms: Iterable[tuple[str, bool]], networks: Iterable[str] = ()
) -> None:
    """Create each named VM in the first datacenter and cluster, its one NIC on PRODUCTION_NETWORK (as vcsim's
    own VMs); power on those marked True. `networks`: port groups the site has besides (a drill's)."""
    with vcenter_session(vcenter, credentials) as si:
        add_port_groups(si, networks)
        datacenter = si.content.rootFolder.childEntity[0]
        cluster = next(c for c in datacenter.hostFolder.childEntity if isinstance(c, vim.ClusterComputeResource))
        datastore = datacenter.datastore[0]
        for name, powered_on in vms:
            nic = vim.vm.device.VirtualE1000(
                key=-1, backing=vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=PRODUCTION_NETWORK)
            )
            spec = vim.vm.ConfigSpec(
                name=name,
                numCPUs=1,
                memoryMB=256,
                guestId="otherGuest64",
                files=vim.vm.FileInfo(vmPathName=f"[{datastore.name}]"),
                deviceChange=[vim.vm.device.VirtualDeviceSpec(operation="add", device=nic)],
            )
            vm = _await_task(
                datacenter.vmFolder.CreateVM_Task(config=spec, pool=cluster.resourcePool), f"create {name}"
            )
            if powered_on:
                _await_task(vm.PowerOnVM_Task(), f"power on {name}")


@dataclass(frozen=True)
class SimulatedGuest:
    """A VM as the simulated guest needs it: on since when (vCenter's boot time), and the IP it reported."""

    power: str
    booted_at: datetime | None
    ip: str


def guests_named(si: Any, names: Iterable[str]) -> dict[str, tuple[Any, SimulatedGuest]]:
    """Each named VM with its guest, in one PropertyCollector call (not a round trip per VM)."""
    return guests_where(si, set(names).__contains__)


def guests_where(si: Any, wanted: Callable[[str], bool]) -> dict[str, tuple[Any, SimulatedGuest]]:
    """Each VM whose name is `wanted`, with its guest, in one PropertyCollector call: VMs the config does not name
    (a drill's clones, `<vm>-drill-<run>`) are found by their name in the same read."""
    guests = {}
    for obj, props in read_properties(si, vim.VirtualMachine, SIMULATED_PROPS):
        if wanted(str(props.get("name"))):
            guest = SimulatedGuest(
                str(props.get("runtime.powerState", "unknown")),
                props.get("summary.runtime.bootTime"),
                str(props.get("guest.ipAddress") or ""),
            )
            guests[str(props["name"])] = (obj, guest)
    return guests


def converge_vms(
    vcenter: VCenter, credentials: Credentials, vms: Iterable[tuple[str, bool]], networks: Iterable[str] = ()
) -> None:
    """Bring each named VM to the power state marked (True: on), creating those that are missing, and destroy every
    other VM (a drill's clones left by a scenario). `networks` as in `create_vms`."""
    wanted = dict(vms)
    with vcenter_session(vcenter, credentials) as si:
        add_port_groups(si, networks)
        for vm, props in read_properties(si, vim.VirtualMachine, ["name", "runtime.powerState"]):
            if props.get("name") not in wanted:
                if props.get("runtime.powerState") != "poweredOff":
                    _await_task(vm.PowerOffVM_Task(), f"power off {props.get('name')}")
                _await_task(vm.Destroy_Task(), f"destroy {props.get('name')}")
        found = guests_named(si, wanted)
        for name, (vm, guest) in found.items():
            is_on = guest.power == "poweredOn"
            if wanted[name] and not is_on:
                _await_task(vm.PowerOnVM_Task(), f"power on {name}")
            elif is_on and not wanted[name]:
                _await_task(vm.PowerOffVM_Task(), f"power off {name}")
    missing = [(name, on) for name, on in wanted.items() if name not in found]
    if missing:
        create_vms(vcenter, credentials, missing, networks)


def power_states(vcenter: VCenter, credentials: Credentials, names: Iterable[str]) -> dict[str, str]:
    """Each named VM's power state (poweredOn, poweredOff, suspended); VMs not found are left out."""
    with vcenter_session(vcenter, credentials) as si:
        return {name: guest.power for name, (_, guest) in guests_named(si, names).items()}


def report_guest_ips(si: Any, vms: dict[str, Any], ips: dict[str, str]) -> None:
    """What VMware Tools does once a guest has booted: report its IP ('' when it went down).

    vcsim simulates no guest; its `SET.guest.ipAddress` extraConfig key sets the property vCenter reports
    (and tells the PropertyCollector's waiters). Not awaited, as a guest does not wait for vCenter: a report
    that did not land is sent again at the next look, which still sees no IP. Sent side by side, as guests
    report each on its own: one after the other, the last of a group would report late."""

    def spec(ip: str) -> Any:
        return vim.vm.ConfigSpec(extraConfig=[vim.option.OptionValue(key=GUEST_IP_KEY, value=ip)])

    call_each({name: partial(vm.ReconfigVM_Task, spec(ips[name])) for name, vm in vms.items() if name in ips})
