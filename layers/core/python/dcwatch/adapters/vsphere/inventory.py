"""One site's vCenter as the `Inventory` port: the failover's reads, power tasks and watches on its VMs, over a
session (`session`), with the VMs found before read by reference."""

from __future__ import annotations

import functools
import http.client
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

from pyVmomi import vim, vmodl

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere.collector import (
    GUEST_PROPS,
    TASK_PROPS,
    PropertyCollector,
    UpdatesWatch,
    guest_of,
    read_objects,
    read_properties,
    retrieve_all,
    task_of,
)
from dcwatch.adapters.vsphere.power import call_each, fault_text, start_each
from dcwatch.adapters.vsphere.session import error_text, reused_session, vcenter_session
from dcwatch.config import VCenter
from dcwatch.errors import PowerOnFailed, TransientError, VcenterUnavailable
from dcwatch.ports import GuestState, Observed, TaskState, Watch
from dcwatch.recovery.waits import Polled

POWER_PROPS = ["name", "runtime.powerState"]
WATCH_POLL_S = 1.0  # a vCenter without WaitForUpdatesEx is asked again this often

# vCenter URL -> VM name -> managed object id: where the failover's steps found the VMs before (a warm
# Lambda's next step reads just the VMs it needs by reference, not every VM to find them by name).
_found: dict[str, dict[str, str]] = {}
_found_lock = threading.Lock()

F = TypeVar("F", bound=Callable[..., Any])


def transient_faults(method: F) -> F:
    """A path that drops mid-step (a reset, a cut HTTP exchange) and an object vCenter no longer knows (a task
    or VM gone between two calls) fail the step as `TransientError`: the workflow retries it, reading again.
    For the methods of an adapter that says `where` (its vCenter)."""

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except vmodl.fault.ManagedObjectNotFound as fault:
            raise TransientError(f"vCenter {self.where}: {fault.obj} no longer known; read again") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"vCenter {self.where}: the connection failed mid-step: {error_text(exc)}") from None

    return call  # type: ignore[return-value]


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
    def si(self) -> Any:
        """The logged-in session (the drill lab's calls go over it too)."""
        return self._si

    @property
    def where(self) -> str:
        return str(getattr(self._si._stub, "host", "?"))

    @property
    def collector(self) -> Any:
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
        found = {}
        for obj, values in read_objects(
            self.collector, [self._refs[name] for name in names], vim.VirtualMachine, props
        ):
            if values.get("name") in names:
                found[str(values["name"])] = (obj, values)
        return found

    def _vms(self, names: Sequence[str]) -> dict[str, tuple[Any, str]]:
        return {
            name: (obj, str(values.get("runtime.powerState", "unknown")))
            for name, (obj, values) in self._named(names, POWER_PROPS).items()
        }

    @transient_faults
    def power_states(self, vm_names: Sequence[str]) -> dict[str, str]:
        return {name: state for name, (_, state) in self._vms(vm_names).items()}

    @transient_faults
    def guest_states(self, vm_names: Sequence[str]) -> dict[str, GuestState]:
        return {name: guest_of(values) for name, (_, values) in self._named(vm_names, GUEST_PROPS).items()}

    @contextmanager
    def watch(self, vm_names: Sequence[str], task_ids: Sequence[str]) -> Iterator[Watch[Observed]]:
        """WaitForUpdatesEx where vCenter has it, else a poll every WATCH_POLL_S."""
        vms = {name: vm for name, (vm, _) in self._vms(vm_names).items()}  # found again: each ref still that VM
        max_wait_s = max(1, math.floor(self._timeout_s) - 2)  # the answer comes before the socket gives up
        try:
            watch = UpdatesWatch(self._si, self.collector, vms, task_ids, max_wait_s)
        except (vmodl.fault.NotSupported, vmodl.fault.MethodNotFound):
            yield Polled(lambda: Observed(self.guest_states(vm_names), self.task_states(task_ids)), WATCH_POLL_S)
            return
        try:
            yield watch
        finally:
            watch.close()

    @transient_faults
    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start every power-on, many in flight at once; a VM vCenter refuses outright is named after the others
        were started. A VM on already (or meanwhile) is skipped."""
        vms = self._vms(vm_names)
        missing = sorted(set(vm_names) - set(vms))
        if missing:
            raise VcenterUnavailable(f"VMs not found: {', '.join(missing)}")
        calls = {name: vm.PowerOnVM_Task for name, (vm, state) in vms.items() if state != "poweredOn"}
        return start_each(calls, "power on", already="poweredOn", error=PowerOnFailed)

    @transient_faults
    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        """In one round trip, however many tasks."""
        if not task_ids:
            return {}
        spec = PropertyCollector.FilterSpec(
            objectSet=[PropertyCollector.ObjectSpec(obj=vim.Task(t, self._si._stub), skip=False) for t in task_ids],
            propSet=[PropertyCollector.PropertySpec(type=vim.Task, pathSet=TASK_PROPS)],
        )
        found = retrieve_all(self.collector, [spec])
        return {o.obj._moId: task_of({p.name: p.val for p in o.propSet}) for o in found}

    @transient_faults
    def power_off(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Start the power-off of every VM that is on, many in flight at once; one vCenter refuses is named (as
        `VcenterUnavailable`) after the others were started. A VM off already (or meanwhile) is skipped."""
        vms = self._vms(vm_names)
        calls = {name: vm.PowerOffVM_Task for name, (vm, state) in vms.items() if state == "poweredOn"}
        return start_each(calls, "power off", already="poweredOff", error=VcenterUnavailable)

    @transient_faults
    def shutdown_guest(self, vm_names: Sequence[str]) -> dict[str, str]:
        """Ask every running guest to shut down, many at once; returns the VMs whose guest refused, with why."""
        vms = self._vms(vm_names)
        answers = call_each({name: vm.ShutdownGuest for name, (vm, state) in vms.items() if state == "poweredOn"})
        refused = {}
        for name, answer in answers.items():
            if isinstance(answer, vim.fault.ToolsUnavailable):
                refused[name] = "VMware Tools not running"
            elif isinstance(answer, vmodl.MethodFault):
                refused[name] = fault_text(answer)
        return refused
