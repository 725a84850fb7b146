"""vCenter through pyvmomi: the small contract failover and probes need.

One session per use (try/finally, never atexit: Lambda environments are reused), properties read
in one PropertyCollector call rather than object by object, and faults turned into domain errors
that say which vCenter and what went wrong.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

from pyVim.connect import Connect, Disconnect, getSslContext
from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from dcwatch.adapters.secrets import Credentials
from dcwatch.config import VCenter
from dcwatch.errors import PowerOnFailed, TransientError, VcenterRefused, VcenterUnavailable, VcenterUnreachable
from dcwatch.ports import GuestState, TaskState
from dcwatch.vcenter import DatastoreState, HostState, TriggeredAlarm, VcenterSnapshot, VmState

PropertyCollector = vmodl.query.PropertyCollector
PAGE_SIZE = 1000  # objects per RetrievePropertiesEx page; the rest follow by ContinueRetrievePropertiesEx
HOST_PROPS = ["name", "runtime.connectionState", "runtime.inMaintenanceMode"]
VM_PROPS = ["name", "runtime.powerState", "summary.quickStats.guestHeartbeatStatus"]
GUEST_PROPS = ["name", "runtime.powerState", "guest.guestHeartbeatStatus", "guest.ipAddress"]
DATASTORE_PROPS = ["name", "summary.accessible", "summary.capacity", "summary.freeSpace"]
MAX_VERSIONS_BYTES = 1024 * 1024  # vimServiceVersions.xml is a few KB; a server sending more is not a vCenter


def _connect(url: str, host: str, port: int, timeout_s: float) -> socket.socket:
    """The TCP connection, the one place a vCenter is `VcenterUnreachable`: nothing answered at all."""
    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:  # refused, connect timeout, no route, the name not resolved (gaierror)
        raise VcenterUnreachable(f"vCenter {url} unreachable: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def api_version(
    protocol: str,
    host: str,
    port: int,
    path: str,
    context: ssl.SSLContext | None,
    timeout_s: float,
    url: str = "",
) -> str:
    """The newest vim25 API version both pyvmomi and the server speak, asked within `timeout_s`.

    SmartConnect asks the same question without any socket timeout (pyvmomi 9.1), so a vCenter
    that accepts and stays silent would hold its thread for as long as the kernel keeps the socket.
    Its connection tells the faults apart: no TCP connection is `VcenterUnreachable`, a refused TLS
    handshake `VcenterRefused`, anything once connected `TransientError`.
    """
    url = url or f"{protocol}://{host}:{port}{path}"
    connection: http.client.HTTPConnection
    if protocol == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    sock = _connect(url, host, port, timeout_s)
    try:
        if protocol == "https":
            tls = context or ssl.create_default_context()
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise VcenterRefused(f"vCenter {url} refused the TLS handshake: {_why(exc)}") from None
        connection.sock = sock  # http.client sends over the connection made here instead of making its own
        connection.request("GET", f"{path}/vimServiceVersions.xml")
        response = connection.getresponse()
        status, document = response.status, response.read(MAX_VERSIONS_BYTES) if response.status == 200 else b""
    except (OSError, http.client.HTTPException) as exc:
        raise TransientError(f"vCenter {url} connected, then failed: {_why(exc)}") from None
    finally:
        connection.close()
        sock.close()
    try:
        root = ElementTree.fromstring(document)
    except ElementTree.ParseError:
        root = None
    served = set() if root is None else {v.text for v in root.iter("version")}
    for version in GetServiceVersions("vim25"):
        if versionIdMap[version] in served:
            return str(version)
    raise TransientError(f"vCenter {url} answered (HTTP {status}) but not as a vCenter: starting, or not one")


LOGIN_REFUSALS = (vim.fault.InvalidLogin, vim.fault.NoPermission, vim.fault.NotAuthenticated)


@contextmanager
def vcenter_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    """A logged-in session whose every socket operation gives up after `timeout_s`.

    Faults by what they say about the site: `VcenterUnreachable` when no TCP connection could be made,
    `VcenterRefused` for a refused login or TLS handshake, `TransientError` for anything after a connection
    (a timeout, a reset, a fault mid-login): worth retrying, and never a sign that the site is down.
    """
    url = urlparse(vcenter.url)
    secure = url.scheme == "https"
    host, port, path = url.hostname or "", url.port or (443 if secure else 80), url.path or "/sdk"
    context = getSslContext(host, None, secure and not vcenter.verify_tls) if secure else None
    version = api_version(url.scheme, host, port, path, context, timeout_s, vcenter.url)
    try:
        si = Connect(
            host=host,
            port=port if secure else -port,  # pyvmomi's way of saying plain http
            user=credentials.username,
            pwd=credentials.password,
            path=path,
            version=version,
            sslContext=context,
            httpConnectionTimeout=timeout_s,
            connectionPoolTimeout=0,
        )
    except LOGIN_REFUSALS:
        raise VcenterRefused(f"vCenter {vcenter.url} refused the login of {credentials.username}") from None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise VcenterRefused(f"vCenter {vcenter.url} refused the TLS handshake: {_why(exc)}") from None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        # Gone between the version lookup and the login: no connection again, as at first.
        raise VcenterUnreachable(f"vCenter {vcenter.url} unreachable: {_why(exc)}") from None
    except TimeoutError:
        raise TransientError(f"vCenter {vcenter.url} connected, then did not answer within {timeout_s:g} s") from None
    except vim.fault.HostConnectFault as fault:  # how pyvmomi reports a login that timed out or was cut
        raise TransientError(
            f"vCenter {vcenter.url} connected, then failed: {getattr(fault, 'msg', '') or 'connection failed'}"
        ) from None
    except (OSError, http.client.HTTPException, vmodl.MethodFault) as exc:
        raise TransientError(f"vCenter {vcenter.url} connected, then failed: {_why(exc)}") from None
    try:
        yield si
    finally:
        with suppress(Exception):  # the session is gone either way
            Disconnect(si)


def _retrieve(si: Any, obj_type: Any, props: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    content = si.RetrieveContent()
    view = content.viewManager.CreateContainerView(content.rootFolder, [obj_type], True)
    try:
        spec = vmodl.query.PropertyCollector.FilterSpec(
            objectSet=[
                vmodl.query.PropertyCollector.ObjectSpec(
                    obj=view,
                    skip=True,
                    selectSet=[
                        vmodl.query.PropertyCollector.TraversalSpec(
                            name="view", path="view", skip=False, type=vim.view.ContainerView
                        )
                    ],
                )
            ],
            propSet=[vmodl.query.PropertyCollector.PropertySpec(type=obj_type, pathSet=props)],
        )
        found = content.propertyCollector.RetrieveContents([spec])
    finally:
        view.Destroy()
    return [(o.obj, {p.name: p.val for p in o.propSet}) for o in found]


class VsphereInventory:
    """One site's vCenter session, as the `Inventory` port."""

    def __init__(self, si: Any):
        self._si = si

    @classmethod
    @contextmanager
    def connect(cls, vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[VsphereInventory]:
        with vcenter_session(vcenter, credentials, timeout_s) as si:
            yield cls(si)

    def _vms(self, names: Sequence[str]) -> dict[str, tuple[Any, str]]:
        wanted = set(names)
        return {
            props["name"]: (obj, str(props.get("runtime.powerState", "unknown")))
            for obj, props in _retrieve(self._si, vim.VirtualMachine, ["name", "runtime.powerState"])
            if props.get("name") in wanted
        }

    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        return {name: state for name, (_, state) in self._vms(vm_names).items()}

    def guest_states(self, vm_names: Sequence[str]) -> dict[str, GuestState]:
        wanted = set(vm_names)
        return {
            str(props["name"]): GuestState(
                str(props.get("runtime.powerState", "unknown")),
                str(props.get("guest.guestHeartbeatStatus") or "gray"),
                str(props.get("guest.ipAddress") or ""),
            )
            for _, props in _retrieve(self._si, vim.VirtualMachine, GUEST_PROPS)
            if props.get("name") in wanted
        }

    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start every power-on; a VM vCenter refuses outright is named after the others were started."""
        vms = self._vms(vm_names)
        missing = sorted(set(vm_names) - set(vms))
        if missing:
            raise VcenterUnavailable(f"VMs not found: {', '.join(missing)}")
        tasks, refused = {}, {}
        for name, (vm, state) in vms.items():
            if state == "poweredOn":
                continue
            try:
                tasks[name] = vm.PowerOnVM_Task()._moId
            except vmodl.MethodFault as fault:
                refused[name] = getattr(fault, "msg", "") or type(fault).__name__
        if refused:
            started = f"; started meanwhile: {', '.join(sorted(tasks))}" if tasks else ""
            raise PowerOnFailed(
                "vCenter refused to power on "
                + "; ".join(f"{vm}: {why}" for vm, why in sorted(refused.items()))
                + started
            )
        return tasks

    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        states = {}
        for task_id in task_ids:
            info = vim.Task(task_id, self._si._stub).info
            error = str(getattr(info.error, "msg", "") or info.error) if info.error is not None else ""
            states[task_id] = TaskState(str(info.state), error)
        return states

    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        return {
            name: vm.PowerOffVM_Task()._moId
            for name, (vm, state) in self._vms(vm_names).items()
            if state == "poweredOn"
        }

    def shutdown_guest(self, vm_names: Sequence[str]) -> dict[str, str]:
        refused = {}
        for name, (vm, state) in self._vms(vm_names).items():
            if state != "poweredOn":
                continue
            try:
                vm.ShutdownGuest()
            except vim.fault.ToolsUnavailable:
                refused[name] = "VMware Tools not running"
            except vmodl.MethodFault as fault:
                refused[name] = getattr(fault, "msg", "") or type(fault).__name__
        return refused


def _retrieve_all(collector: Any, specs: list[Any]) -> list[Any]:
    """Every object the filter specs select, in as few round trips as vCenter's paging allows."""
    page = collector.RetrievePropertiesEx(specs, PropertyCollector.RetrieveOptions(maxObjects=PAGE_SIZE))
    objects = list(page.objects) if page else []
    while page is not None and page.token:
        page = collector.ContinueRetrievePropertiesEx(page.token)
        objects += page.objects
    return objects


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
    found = _retrieve_all(collector, [PropertyCollector.FilterSpec(objectSet=objects, propSet=props)])
    return {o.obj._moId: str(o.propSet[0].val) for o in found if o.propSet}


def read_snapshot(
    content: Any, root: Any, *, hosts: bool = True, vms: bool = True, alarms: bool = True
) -> VcenterSnapshot:
    """Hosts, VMs, datastores and triggered alarms below `root`, batched by the PropertyCollector."""
    kinds = [vim.Datastore] + ([vim.HostSystem] if hosts else []) + ([vim.VirtualMachine] if vms else [])
    view = content.viewManager.CreateContainerView(root, kinds, True)
    try:
        found = _retrieve_all(
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
