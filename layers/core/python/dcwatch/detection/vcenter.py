"""The vCenter check: what one read of a site's vCenter says, and the verdict on each part of it.

The probe reads a site's vCenter once per round (one session, batched property reads) into a
`VcenterSnapshot`; each planned part (login, hosts, vms, datastores, alarms) is judged from that
same snapshot, so five parts cost one login. Pure: no pyvmomi here.
"""

from __future__ import annotations

from dataclasses import dataclass

from dcwatch.config import VcenterProbe
from dcwatch.detection.checks import Outcome

MAX_REASON = 200


@dataclass(frozen=True)
class HostState:
    name: str
    connection_state: str  # connected, disconnected, notResponding
    in_maintenance: bool


@dataclass(frozen=True)
class VmState:
    name: str
    power_state: str  # poweredOn, poweredOff, suspended
    heartbeat: str  # VMware Tools heartbeat: green, yellow, red, gray (no tools or not running)


@dataclass(frozen=True)
class DatastoreState:
    name: str
    accessible: bool
    capacity_bytes: int
    free_bytes: int

    @property
    def free_pct(self) -> float:
        return 100.0 * self.free_bytes / self.capacity_bytes if self.capacity_bytes > 0 else 0.0


@dataclass(frozen=True)
class TriggeredAlarm:
    alarm: str
    entity: str
    status: str  # red or yellow


@dataclass(frozen=True)
class VcenterSnapshot:
    """A site's vCenter as read in one session; kinds the plan did not ask for stay empty."""

    about: str
    hosts: tuple[HostState, ...] = ()
    vms: tuple[VmState, ...] = ()
    datastores: tuple[DatastoreState, ...] = ()
    alarms: tuple[TriggeredAlarm, ...] = ()


def _verdict(problems: list[str], *, warning: bool = False) -> Outcome:
    """Every problem named, as many as fit a short reason, then how many more."""
    if not problems:
        return Outcome(True)
    shown, reason = len(problems), "; ".join(problems)
    while len(reason) > MAX_REASON and shown > 1:
        shown -= 1
        reason = "; ".join(problems[:shown]) + f" (+{len(problems) - shown} more)"
    return Outcome(False, reason[:MAX_REASON], warning)


def judge_hosts(probe: VcenterProbe, hosts: tuple[HostState, ...]) -> Outcome:
    if not hosts:
        return Outcome(False, "no hosts in the inventory")
    allowed = set(probe.expected_maintenance)
    problems = []
    for host in sorted(hosts, key=lambda h: h.name):
        if host.connection_state != "connected":
            problems.append(f"host {host.name} {host.connection_state}")
        elif host.in_maintenance and host.name not in allowed:
            problems.append(f"host {host.name} in maintenance")
    return _verdict(problems)


def _vm_problem(vm: VmState) -> str | None:
    if vm.power_state != "poweredOn":
        return f"vm {vm.name} {vm.power_state}"
    if vm.heartbeat != "green":
        return f"vm {vm.name} tools heartbeat {vm.heartbeat}"
    return None


def judge_vms(probe: VcenterProbe, vms: tuple[VmState, ...]) -> Outcome:
    """Each critical VM runs with a green tools heartbeat; names may repeat across folders: one good copy will do."""
    by_name: dict[str, list[VmState]] = {}
    for vm in vms:
        by_name.setdefault(vm.name, []).append(vm)
    problems = []
    for name in probe.critical_vms:
        found = [_vm_problem(vm) for vm in by_name.get(name, [])]
        if not found:
            problems.append(f"vm {name} not found")
        elif None not in found:
            problems.append(str(found[0]))
    return _verdict(problems)


def judge_datastores(probe: VcenterProbe, datastores: tuple[DatastoreState, ...]) -> Outcome:
    if not datastores:
        return Outcome(False, "no datastores in the inventory")
    problems = []
    for ds in sorted(datastores, key=lambda d: d.name):
        if not ds.accessible:
            problems.append(f"datastore {ds.name} inaccessible")
        elif ds.free_pct < probe.datastore_min_free_pct:
            problems.append(f"datastore {ds.name} {ds.free_pct:.1f} % free < {probe.datastore_min_free_pct:g} %")
    return _verdict(problems)


def judge_alarms(alarms: tuple[TriggeredAlarm, ...]) -> Outcome:
    """Triggered alarms are worth a look, never a failover: always a warning."""
    red_first = sorted(alarms, key=lambda a: (a.status != "red", a.entity, a.alarm))
    return _verdict([f"alarm {a.alarm!r} {a.status} on {a.entity}" for a in red_first], warning=True)


def judge_part(part: str, probe: VcenterProbe, snapshot: VcenterSnapshot) -> Outcome:
    """The verdict on one planned part of the vCenter check; a snapshot at all means the login worked."""
    if part == "login":
        return Outcome(True)
    if part == "hosts":
        return judge_hosts(probe, snapshot.hosts)
    if part == "vms":
        return judge_vms(probe, snapshot.vms)
    if part == "datastores":
        return judge_datastores(probe, snapshot.datastores)
    if part == "alarms":
        return judge_alarms(snapshot.alarms)
    raise ValueError(f"unknown vCenter check part {part!r}")
