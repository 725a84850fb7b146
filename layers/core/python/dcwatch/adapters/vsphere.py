"""vCenter through pyvmomi: the small contract failover and probes need.

One session per use (try/finally, never atexit: Lambda environments are reused), properties read
in one PropertyCollector call rather than object by object, and faults turned into domain errors
that say which vCenter and what went wrong.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlparse

from pyVim.connect import Disconnect, SmartConnect
from pyVmomi import vim, vmodl

from dcwatch.adapters.secrets import Credentials
from dcwatch.config import VCenter
from dcwatch.errors import TransientError, VcenterUnavailable
from dcwatch.ports import TaskState


@contextmanager
def vcenter_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    url = urlparse(vcenter.url)
    secure = url.scheme == "https"
    try:
        si = SmartConnect(
            protocol=url.scheme,
            host=url.hostname or "",
            port=url.port or (443 if secure else 80),
            path=url.path or "/sdk",
            user=credentials.username,
            pwd=credentials.password,
            disableSslCertValidation=secure and not vcenter.verify_tls,
            httpConnectionTimeout=timeout_s,
            connectionPoolTimeout=0,
        )
    except vim.fault.InvalidLogin:
        raise VcenterUnavailable(f"vCenter {vcenter.url} refused the login of {credentials.username}") from None
    except (TimeoutError, OSError) as exc:
        raise TransientError(f"vCenter {vcenter.url} unreachable: {exc}") from None
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

    def power_on(self, vm_names: Sequence[str]) -> dict[str, str]:
        vms = self._vms(vm_names)
        missing = sorted(set(vm_names) - set(vms))
        if missing:
            raise VcenterUnavailable(f"VMs not found: {', '.join(missing)}")
        return {name: vm.PowerOnVM_Task()._moId for name, (vm, state) in vms.items() if state != "poweredOn"}

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


def vcenter_login_check(vcenter: VCenter, credentials: Credentials, timeout_s: float) -> str:
    """Proves vCenter answers and accepts the login; returns what it says it is."""
    with vcenter_session(vcenter, credentials, timeout_s) as si:
        return str(si.content.about.fullName)
