"""What a probe round reads of a vCenter: hosts, VMs, datastores and triggered alarms in one batched read
(`read_vcenter`), and the login check."""

from __future__ import annotations

from typing import Any

from pyVmomi import vim, vmodl

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere.collector import PropertyCollector, retrieve_all
from dcwatch.adapters.vsphere.session import vcenter_session
from dcwatch.config import VCenter
from dcwatch.detection.vcenter import DatastoreState, HostState, TriggeredAlarm, VcenterSnapshot, VmState
from dcwatch.errors import TransientError, VcenterUnavailable

HOST_PROPS = ["name", "runtime.connectionState", "runtime.inMaintenanceMode"]
VM_PROPS = ["name", "runtime.powerState", "summary.quickStats.guestHeartbeatStatus"]
DATASTORE_PROPS = ["name", "summary.accessible", "summary.capacity", "summary.freeSpace"]


def _inventory_spec(root: Any, view: Any, *, hosts: bool, vms: bool, alarms: bool) -> Any:
    """One filter: hosts, VMs and datastores through the container view, alarms from the root."""
    props = [PropertyCollector.PropertySpec(type=vim.Datastore, pathSet=DATASTORE_PROPS)]
    if hosts:
        props.append(PropertyCollector.PropertySpec(type=vim.HostSystem, pathSet=HOST_PROPS))
    if vms:
        props.append(PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=VM_PROPS))
    traverse_view = PropertyCollector.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
    objects = [PropertyCollector.ObjectSpec(obj=view, skip=True, selectSet=[traverse_view])]
    if alarms:
        # An entity's triggered alarm state holds the alarms of everything below it.
        props.append(PropertyCollector.PropertySpec(type=type(root), pathSet=["triggeredAlarmState"]))
        objects.append(PropertyCollector.ObjectSpec(obj=root, skip=False))
    return PropertyCollector.FilterSpec(objectSet=objects, propSet=props)


def _names(collector: Any, refs: list[Any]) -> dict[str, str]:
    """Names of alarms and entities by managed object id, in one round trip."""
    if not refs:
        return {}
    props = []
    for kind in {type(ref) for ref in refs}:
        path = "info.name" if issubclass(kind, vim.alarm.Alarm) else "name"
        props.append(PropertyCollector.PropertySpec(type=kind, pathSet=[path]))
    objects = [PropertyCollector.ObjectSpec(obj=ref, skip=False) for ref in refs]
    found = retrieve_all(collector, [PropertyCollector.FilterSpec(objectSet=objects, propSet=props)])
    return {o.obj._moId: str(o.propSet[0].val) for o in found if o.propSet}


def read_snapshot(
    content: Any, root: Any, *, hosts: bool = True, vms: bool = True, alarms: bool = True
) -> VcenterSnapshot:
    """Hosts, VMs, datastores and triggered alarms below `root`, batched by the PropertyCollector."""
    kinds = [vim.Datastore] + ([vim.HostSystem] if hosts else []) + ([vim.VirtualMachine] if vms else [])
    view = content.viewManager.CreateContainerView(root, kinds, True)
    try:
        found = retrieve_all(
            content.propertyCollector, [_inventory_spec(root, view, hosts=hosts, vms=vms, alarms=alarms)]
        )
    finally:
        view.Destroy()
    by_kind: dict[type, list[tuple[Any, dict[str, Any]]]] = {}
    for o in found:
        by_kind.setdefault(type(o.obj), []).append((o.obj, {p.name: p.val for p in o.propSet}))
    named = {obj._moId: str(p.get("name", obj._moId)) for objs in by_kind.values() for obj, p in objs}
    states = [s for _, p in by_kind.get(type(root), []) for s in p.get("triggeredAlarmState") or []]
    unnamed = [s.alarm for s in states] + [s.entity for s in states if s.entity._moId not in named]
    named |= _names(content.propertyCollector, list({ref._moId: ref for ref in unnamed}.values()))
    return VcenterSnapshot(
        about=str(content.about.fullName),
        hosts=tuple(
            HostState(
                str(p.get("name")),
                str(p.get("runtime.connectionState", "unknown")),
                bool(p.get("runtime.inMaintenanceMode", False)),
            )
            for _, p in by_kind.get(vim.HostSystem, [])
        ),
        vms=tuple(
            VmState(
                str(p.get("name")),
                str(p.get("runtime.powerState", "unknown")),
                str(p.get("summary.quickStats.guestHeartbeatStatus", "gray")),
            )
            for _, p in by_kind.get(vim.VirtualMachine, [])
        ),
        datastores=tuple(
            DatastoreState(
                str(p.get("name")),
                bool(p.get("summary.accessible", False)),
                int(p.get("summary.capacity", 0)),
                int(p.get("summary.freeSpace", 0)),
            )
            for _, p in by_kind.get(vim.Datastore, [])
        ),
        alarms=tuple(
            TriggeredAlarm(
                named.get(s.alarm._moId, s.alarm._moId), named.get(s.entity._moId, s.entity._moId), str(s.overallStatus)
            )
            for s in states
        ),
    )


def read_vcenter(
    vcenter: VCenter,
    credentials: Credentials,
    timeout_s: float,
    *,
    hosts: bool = True,
    vms: bool = True,
    alarms: bool = True,
) -> VcenterSnapshot:
    """One session, one batched read of the configured datacenter (else everything): what a round judges."""
    with vcenter_session(vcenter, credentials, timeout_s) as si:
        try:
            content = si.RetrieveContent()  # once: every `si.content` is a round trip of its own
            root = content.rootFolder
            if vcenter.datacenter:
                root = content.searchIndex.FindByInventoryPath(vcenter.datacenter)
                if not isinstance(root, vim.Datacenter):
                    raise VcenterUnavailable(f"vCenter {vcenter.url}: datacenter {vcenter.datacenter!r} not found")
            return read_snapshot(content, root, hosts=hosts, vms=vms, alarms=alarms)
        except vmodl.MethodFault as fault:
            raise VcenterUnavailable(
                f"vCenter {vcenter.url} inventory read failed: {getattr(fault, 'msg', '') or type(fault).__name__}"
            ) from None
        except (TimeoutError, OSError) as exc:
            raise TransientError(f"vCenter {vcenter.url} inventory read failed: {exc}") from None


def vcenter_login_check(vcenter: VCenter, credentials: Credentials, timeout_s: float) -> str:
    """Proves vCenter answers and accepts the login; returns what it says it is."""
    with vcenter_session(vcenter, credentials, timeout_s) as si:
        return str(si.content.about.fullName)
