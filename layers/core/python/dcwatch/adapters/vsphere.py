"""vCenter through pyvmomi: the small contract failover and probes need.

Probes log in and out once per use (try/finally, never atexit: Lambda environments are reused); the
failover's steps reuse the session a warm Lambda left (`reused_session`), over a new TCP connection each
time. Properties are read in one PropertyCollector call rather than object by object, a wait on VMs is a
PropertyCollector `WaitForUpdatesEx` that answers as they change, and faults are turned into domain errors
that say which vCenter and what went wrong.
"""

from __future__ import annotations

import functools
import hashlib
import http.client
import math
import socket
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from urllib.parse import urlparse
from xml.etree import ElementTree

from pyVim.connect import Connect, Disconnect, getSslContext
from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from dcwatch.adapters import xml_guard
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.tls import tls_context
from dcwatch.config import VCenter
from dcwatch.detection.vcenter import DatastoreState, HostState, TriggeredAlarm, VcenterSnapshot, VmState
from dcwatch.errors import (
    DcwatchError,
    PowerOnFailed,
    TransientError,
    VcenterRefused,
    VcenterUnavailable,
    VcenterUnreachable,
)
from dcwatch.ports import GuestState, Observed, TaskState, Watch
from dcwatch.recovery.waits import Polled

xml_guard.install()  # before any answer of a vCenter is parsed

PropertyCollector = vmodl.query.PropertyCollector
PAGE_SIZE = 1000  # objects per RetrievePropertiesEx page; the rest follow by ContinueRetrievePropertiesEx
HOST_PROPS = ["name", "runtime.connectionState", "runtime.inMaintenanceMode"]
POWER_PROPS = ["name", "runtime.powerState"]
VM_PROPS = ["name", "runtime.powerState", "summary.quickStats.guestHeartbeatStatus"]
GUEST_PROPS = ["name", "runtime.powerState", "guest.guestHeartbeatStatus", "guest.ipAddress"]
TASK_PROPS = ["info.state", "info.error"]
DATASTORE_PROPS = ["name", "summary.accessible", "summary.capacity", "summary.freeSpace"]
WATCH_POLL_S = 1.0  # a vCenter without WaitForUpdatesEx is asked again this often
MAX_IDLE_SESSIONS = 4  # per vCenter and login, kept for the next use; more are logged out
MAX_UPDATE_PAGES = 100  # a truncated WaitForUpdatesEx answer is continued at most this often
MAX_VERSIONS_BYTES = 1024 * 1024  # vimServiceVersions.xml is a few KB; a server sending more is not a vCenter
# Per-VM calls (PowerOnVM_Task, ...) in flight at once on one session: each is a round trip to vCenter, which
# queues the tasks itself; pyVmomi's stub gives each concurrent call a connection of its own from its pool.
MAX_CALLS_IN_FLIGHT = 8


def _connect(url: str, host: str, port: int, timeout_s: float) -> socket.socket:
    """The TCP connection, the one place a vCenter is `VcenterUnreachable`: nothing answered at all."""
    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:  # refused, connect timeout, no route, the name not resolved (gaierror)
        raise VcenterUnreachable(f"vCenter {url} unreachable: {_why(exc)}") from None


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


F = TypeVar("F", bound=Callable[..., Any])


def _transient_faults(method: F) -> F:
    """A path that drops mid-step (a reset, a cut HTTP exchange) and an object vCenter no longer knows (a task
    or VM gone between two calls) fail the step as `TransientError`: the workflow retries it, reading again."""

    @functools.wraps(method)
    def call(self: VsphereInventory, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except vmodl.fault.ManagedObjectNotFound as fault:
            raise TransientError(f"vCenter {self.where}: {fault.obj} no longer known; read again") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"vCenter {self.where}: the connection failed mid-step: {_why(exc)}") from None

    return call  # type: ignore[return-value]


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
        root = xml_guard.element(document)
    except ElementTree.ParseError:
        root = None
    served = set() if root is None else {v.text for v in root.iter("version")}
    for version in GetServiceVersions("vim25"):
        if versionIdMap[version] in served:
            return str(version)
    raise TransientError(f"vCenter {url} answered (HTTP {status}) but not as a vCenter: starting, or not one")


def _trusted(vcenter: VCenter) -> ssl.SSLContext | None:
    """The system's CAs and the vCenter's `ca_file`; None where TLS is not verified. Never pyVmomi's default
    (no context): it verifies nothing for a vCenter at 127.0.0.1 or localhost."""
    if not vcenter.verify_tls:
        return None
    try:
        return tls_context(vcenter.ca_file)
    except OSError as exc:  # our side's file: the vCenter may be fine, so never a sign that the site is down
        raise VcenterRefused(
            f"vCenter {vcenter.url}: ca_file {vcenter.ca_file!r} unusable: {exc.strerror or _why(exc)}"
        ) from None


LOGIN_REFUSALS = (vim.fault.InvalidLogin, vim.fault.NoPermission, vim.fault.NotAuthenticated)


def _login(vcenter: VCenter, credentials: Credentials, timeout_s: float) -> Any:
    """A new logged-in session whose every socket operation gives up after `timeout_s`.

    Faults by what they say about the site: `VcenterUnreachable` when no TCP connection could be made,
    `VcenterRefused` for a refused login or TLS handshake, `TransientError` for anything after a connection
    (a timeout, a reset, a fault mid-login): worth retrying, and never a sign that the site is down.
    """
    url = urlparse(vcenter.url)
    secure = url.scheme == "https"
    host, port, path = url.hostname or "", url.port or (443 if secure else 80), url.path or "/sdk"
    context = getSslContext(host, _trusted(vcenter), secure and not vcenter.verify_tls) if secure else None
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
    return si


def _logout(si: Any) -> None:
    with suppress(Exception):  # the session is gone either way
        Disconnect(si)


@contextmanager
def vcenter_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    """A session of its own, logged out at the end: what a probe's login check proves, it proves each time."""
    si = _login(vcenter, credentials, timeout_s)
    try:
        yield si
    finally:
        _logout(si)


# vCenter URL -> VM name -> managed object id: where the failover's steps found the VMs before (a warm
# Lambda's next step reads just the VMs it needs by reference, not every VM to find them by name).
_found: dict[str, dict[str, str]] = {}
_found_lock = threading.Lock()
_idle: dict[tuple[str, str, str], list[Any]] = {}
_idle_lock = threading.Lock()


def _pool_key(vcenter: VCenter, credentials: Credentials) -> tuple[str, str, str]:
    """Per vCenter URL and login: a rotated password starts a session of its own."""
    return vcenter.url, credentials.username, hashlib.sha256(credentials.password.encode()).hexdigest()


def _still_valid(si: Any, vcenter: VCenter, timeout_s: float) -> bool:
    """Whether vCenter still knows the idle session `si`, asked over a new TCP connection.

    A new connection because a path that failed meanwhile must fail this use at once, and one that a NAT
    forgot while the Lambda was frozen must not hang it. No TCP connection is `VcenterUnreachable`, one that
    then fails `TransientError`, as at login; only a session vCenter no longer knows means logging in again."""
    si._stub.DropConnections()
    url = urlparse(vcenter.url)
    _connect(vcenter.url, url.hostname or "", url.port or (443 if url.scheme == "https" else 80), timeout_s).close()
    try:
        return si.content.sessionManager.currentSession is not None
    except vim.fault.NotAuthenticated:
        return False
    except (ConnectionError, http.client.HTTPException):
        return False  # e.g. vCenter restarted meanwhile: the login will tell
    except (OSError, vmodl.MethodFault) as exc:
        raise TransientError(f"vCenter {vcenter.url} connected, then failed: {_why(exc)}") from None


@contextmanager
def reused_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    """A logged-in session, the one an earlier use left if vCenter still knows it: a warm Lambda logs in once.

    Each use has the session to itself (threads of the local runtime share the process); it goes back for the
    next use unless the use failed, which logs it out. Faults as at login (`VcenterUnreachable`, ...)."""
    key = _pool_key(vcenter, credentials)
    si = None
    while si is None:
        with _idle_lock:
            idle = _idle.get(key, [])
            candidate = idle.pop() if idle else None
        if candidate is None:
            si = _login(vcenter, credentials, timeout_s)
        elif _still_valid(candidate, vcenter, timeout_s):
            si = candidate
        else:
            _logout(candidate)
    try:
        yield si
    except BaseException:
        _logout(si)
        raise
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        kept = len(idle) < MAX_IDLE_SESSIONS
        if kept:
            idle.append(si)
    if not kept:
        _logout(si)


def log_out_idle_sessions() -> None:
    """Log out every session kept for reuse (the local runtime at its end, tests)."""
    with _idle_lock:
        sessions = [si for idle in _idle.values() for si in idle]
        _idle.clear()
    for si in sessions:
        _logout(si)


def read_properties(si: Any, obj_type: Any, props: list[str]) -> list[tuple[Any, dict[str, Any]]]:
    """Every object of `obj_type` with `props`, in one PropertyCollector call."""
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


def _guest(props: dict[str, Any]) -> GuestState:
    return GuestState(
        str(props.get("runtime.powerState", "unknown")),
        str(props.get("guest.guestHeartbeatStatus") or "gray"),
        str(props.get("guest.ipAddress") or ""),
    )


def _task(props: dict[str, Any]) -> TaskState:
    error = props.get("info.error")
    return TaskState(str(props.get("info.state", "unknown")), str(getattr(error, "msg", "") or error) if error else "")


class _UpdatesWatch:
    """VMs' guests and tasks as vCenter's PropertyCollector tells their changes (WaitForUpdatesEx), on a
    collector of its own, so that no other filter's updates mix in; `close()` destroys it."""

    def __init__(self, si: Any, collector: Any, vms: dict[str, Any], task_ids: Sequence[str], max_wait_s: int):
        self._where = str(getattr(si._stub, "host", "?"))
        self._names = {vm._moId: name for name, vm in vms.items()}
        self._max_wait_s = max_wait_s
        self._props: dict[str, dict[str, Any]] = {}
        self._version = ""
        objects = [PropertyCollector.ObjectSpec(obj=vm, skip=False) for vm in vms.values()]
        objects += [PropertyCollector.ObjectSpec(obj=vim.Task(t, si._stub), skip=False) for t in task_ids]
        props = [
            PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=GUEST_PROPS),
            PropertyCollector.PropertySpec(type=vim.Task, pathSet=TASK_PROPS),
        ]
        self._collector = collector.CreatePropertyCollector()
        try:
            self._collector.CreateFilter(PropertyCollector.FilterSpec(objectSet=objects, propSet=props), False)
            self._update(0)  # the first answer holds every property as it is now
        except BaseException:
            self.close()
            raise

    def _update(self, wait_s: int) -> None:
        options = PropertyCollector.WaitOptions(maxWaitSeconds=wait_s)
        for _ in range(MAX_UPDATE_PAGES):
            try:
                result = self._collector.WaitForUpdatesEx(self._version, options)
            except (OSError, http.client.HTTPException) as exc:
                # The step spends most of its time here: a blip of the path is retried, not the end of the failover.
                raise TransientError(f"vCenter {self._where}: waiting for the VMs failed: {_why(exc)}") from None
            if result is None:  # nothing changed within wait_s
                return
            self._version = result.version
            for update in (u for f in result.filterSet or [] for u in f.objectSet or []):
                props = self._props.setdefault(update.obj._moId, {})
                if update.kind == "leave":
                    props.clear()
                for change in update.changeSet or []:
                    if change.op == "remove":
                        props.pop(change.name, None)
                    else:
                        props[change.name] = change.val
            if not result.truncated:
                return
            options = PropertyCollector.WaitOptions(maxWaitSeconds=0)

    def _seen(self) -> Observed:
        return Observed(
            guests={name: _guest(self._props[ref]) for ref, name in self._names.items() if self._props.get(ref)},
            tasks={ref: _task(props) for ref, props in self._props.items() if ref not in self._names and props},
        )

    def current(self) -> Observed:
        return self._seen()

    def changed(self, timeout_s: float) -> Observed:
        # Whole seconds, at least one (0 would not wait), and below the session's socket timeout.
        self._update(max(1, min(math.ceil(timeout_s), self._max_wait_s)))
        return self._seen()

    def close(self) -> None:
        with suppress(Exception):  # the session may be gone: vCenter drops the collector with it
            self._collector.DestroyPropertyCollector()


class VsphereInventory:
    """One site's vCenter session, as the `Inventory` port."""

    def __init__(self, si: Any, timeout_s: float = 10.0, found: dict[str, str] | None = None):
        """`found`: VM name -> managed object id as earlier uses found them (shared, kept up to date), read by
        reference, checked by name, and looked up again by name when one is gone or renamed."""
        self._si = si
        self._timeout_s = timeout_s
        self._found = {} if found is None else found
        with _found_lock:
            known = dict(self._found)
        self._refs: dict[str, Any] = {name: vim.VirtualMachine(moid, si._stub) for name, moid in known.items()}
        self._content: Any = None

    @property
    def where(self) -> str:
        return str(getattr(self._si._stub, "host", "?"))

    @property
    def _collector(self) -> Any:
        if self._content is None:
            self._content = self._si.RetrieveContent()  # once: every `si.content` is a round trip of its own
        return self._content.propertyCollector

    @classmethod
    @contextmanager
    def connect(cls, vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[VsphereInventory]:
        with vcenter_session(vcenter, credentials, timeout_s) as si:
            yield cls(si, timeout_s)

    @classmethod
    @contextmanager
    def reused(cls, vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[VsphereInventory]:
        """Over the session an earlier use left (`reused_session`): the failover's steps log in once per warm Lambda."""
        with reused_session(vcenter, credentials, timeout_s) as si:
            yield cls(si, timeout_s, _found.setdefault(vcenter.url, {}))

    def _named(self, names: Sequence[str], props: list[str]) -> dict[str, tuple[Any, dict[str, Any]]]:
        """Each named VM with `props` (which hold "name"). The VMs this session has found are read by reference,
        just them in one round trip; otherwise, or if one is gone or renamed meanwhile, every VM is read by name."""
        wanted = set(names)
        if wanted and wanted <= set(self._refs):
            with suppress(vmodl.fault.ManagedObjectNotFound):
                known = self._by_ref(wanted, props)
                if len(known) == len(wanted):
                    return known
        found = {}
        for obj, values in read_properties(self._si, vim.VirtualMachine, props):
            name = values.get("name")
            if name in wanted:
                self._refs[str(name)] = obj
                found[str(name)] = (obj, values)
        with _found_lock:
            self._found.update({name: obj._moId for name, (obj, _) in found.items()})
        return found

    def _by_ref(self, names: set[str], props: list[str]) -> dict[str, tuple[Any, dict[str, Any]]]:
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=self._refs[name], skip=False) for name in names],
            propSet=[PropertyCollector.PropertySpec(type=vim.VirtualMachine, pathSet=props)],
        )
        found = {}
        for o in _retrieve_all(self._collector, [spec]):
            values = {p.name: p.val for p in o.propSet}
            if values.get("name") in names:
                found[str(values["name"])] = (o.obj, values)
        return found

    def _vms(self, names: Sequence[str]) -> dict[str, tuple[Any, str]]:
        return {
            name: (obj, str(values.get("runtime.powerState", "unknown")))
            for name, (obj, values) in self._named(names, POWER_PROPS).items()
        }

    @_transient_faults
    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        return {name: state for name, (_, state) in self._vms(vm_names).items()}

    @_transient_faults
    def guest_states(self, vm_names: Sequence[str]) -> dict[str, GuestState]:
        return {name: _guest(values) for name, (_, values) in self._named(vm_names, GUEST_PROPS).items()}

    @contextmanager
    def watch(self, vm_names: Sequence[str], task_ids: Sequence[str]) -> Iterator[Watch[Observed]]:
        """WaitForUpdatesEx where vCenter has it, else a poll every WATCH_POLL_S."""
        vms = {name: vm for name, (vm, _) in self._vms(vm_names).items()}  # found again: each ref still that VM
        max_wait_s = max(1, math.floor(self._timeout_s) - 2)  # the answer comes before the socket gives up
        try:
            watch = _UpdatesWatch(self._si, self._collector, vms, task_ids, max_wait_s)
        except (vmodl.fault.NotSupported, vmodl.fault.MethodNotFound):
            yield Polled(lambda: Observed(self.guest_states(vm_names), self.task_states(task_ids)), WATCH_POLL_S)
            return
        try:
            yield watch
        finally:
            watch.close()

    @_transient_faults
    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start every power-on, many in flight at once; a VM vCenter refuses outright is named after the others
        were started. A VM on already (or meanwhile) is skipped."""
        vms = self._vms(vm_names)
        missing = sorted(set(vm_names) - set(vms))
        if missing:
            raise VcenterUnavailable(f"VMs not found: {', '.join(missing)}")
        calls = {name: vm.PowerOnVM_Task for name, (vm, state) in vms.items() if state != "poweredOn"}
        return _start_each(calls, "power on", already="poweredOn", error=PowerOnFailed)

    @_transient_faults
    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        """In one round trip, however many tasks."""
        if not task_ids:
            return {}
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=vim.Task(t, self._si._stub), skip=False) for t in task_ids],
            propSet=[PropertyCollector.PropertySpec(type=vim.Task, pathSet=TASK_PROPS)],
        )
        found = _retrieve_all(self._collector, [spec])
        return {o.obj._moId: _task({p.name: p.val for p in o.propSet}) for o in found}

    @_transient_faults
    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start the power-off of every VM that is on, many in flight at once; one vCenter refuses is named (as
        `VcenterUnavailable`) after the others were started. A VM off already (or meanwhile) is skipped."""
        vms = self._vms(vm_names)
        calls = {name: vm.PowerOffVM_Task for name, (vm, state) in vms.items() if state == "poweredOn"}
        return _start_each(calls, "power off", already="poweredOff", error=VcenterUnavailable)

    @_transient_faults
    def shutdown_guest(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Ask every running guest to shut down, many at once; returns the VMs whose guest refused, with why."""
        vms = self._vms(vm_names)
        answers = call_each({name: vm.ShutdownGuest for name, (vm, state) in vms.items() if state == "poweredOn"})
        refused = {}
        for name, answer in answers.items():
            if isinstance(answer, vim.fault.ToolsUnavailable):
                refused[name] = "VMware Tools not running"
            elif isinstance(answer, vmodl.MethodFault):
                refused[name] = _fault_text(answer)
        return refused


def call_each(calls: Mapping[str, Callable[[], Any]]) -> dict[str, Any]:
    """Every call (one per VM), at most MAX_CALLS_IN_FLIGHT at once: what it returned, or the fault vCenter
    answered (a `vmodl.MethodFault`), by key. All have ended when this returns; one that failed otherwise (the
    connection) is raised then."""
    if len(calls) <= 1:
        return {key: _answer(call) for key, call in calls.items()}
    with ThreadPoolExecutor(max_workers=min(MAX_CALLS_IN_FLIGHT, len(calls)), thread_name_prefix="vcenter") as pool:
        futures = {key: pool.submit(_answer, call) for key, call in calls.items()}
    return {key: future.result() for key, future in futures.items()}


def _fault_text(fault: Any) -> str:
    """What vCenter said, or the fault's name where it said nothing."""
    return getattr(fault, "msg", "") or type(fault).__name__


def _answer(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except vmodl.MethodFault as fault:
        return fault


def _start_each(
    calls: Mapping[str, Callable[[], Any]], what: str, *, already: str, error: type[DcwatchError]
) -> dict[str, str]:
    """A task per VM, started many at once (`call_each`): task id by VM. The VMs vCenter refuses are named (as
    `error`) once the others were started; one found in the power state `already` meanwhile is no refusal."""
    tasks, refused, gone = {}, {}, []
    for name, answer in call_each(calls).items():
        if not isinstance(answer, vmodl.MethodFault):
            tasks[name] = str(answer._moId)
        elif isinstance(answer, vmodl.fault.ManagedObjectNotFound):
            gone.append(name)  # unregistered or re-registered since it was looked up: found again by name
        elif not (isinstance(answer, vim.fault.InvalidPowerState) and str(answer.existingState) == already):
            refused[name] = _fault_text(answer)
    if refused:
        started = f"; started meanwhile: {', '.join(sorted(tasks))}" if tasks else ""
        why = "; ".join(f"{vm}: {why}" for vm, why in sorted(refused.items()))
        raise error(f"vCenter refused to {what} {why}{started}")
    if gone:
        raise TransientError(f"vCenter no longer knows {', '.join(sorted(gone))} (to {what}); looked up again")
    return tasks


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
