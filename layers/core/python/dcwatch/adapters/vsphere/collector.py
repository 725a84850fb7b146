"""vCenter's PropertyCollector: many objects' properties in one round trip (paged), and a watch on VMs' guests
and tasks that vCenter answers as they change (`WaitForUpdatesEx`)."""

from __future__ import annotations

import http.client
import math
from collections.abc import Sequence
from contextlib import suppress
from typing import Any

from pyVmomi import vim, vmodl

from dcwatch.adapters.vsphere.session import error_text
from dcwatch.errors import TransientError
from dcwatch.ports import GuestState, Observed, TaskState

PropertyCollector = vmodl.query.PropertyCollector
PAGE_SIZE = 1000  # objects per RetrievePropertiesEx page; the rest follow by ContinueRetrievePropertiesEx
GUEST_PROPS = ["name", "runtime.powerState", "guest.guestHeartbeatStatus", "guest.ipAddress"]
TASK_PROPS = ["info.state", "info.error"]
MAX_UPDATE_PAGES = 100  # a truncated WaitForUpdatesEx answer is continued at most this often


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


def retrieve_all(collector: Any, specs: list[Any]) -> list[Any]:
    """Every object the filter specs select, in as few round trips as vCenter's paging allows."""
    page = collector.RetrievePropertiesEx(specs, PropertyCollector.RetrieveOptions(maxObjects=PAGE_SIZE))
    objects = list(page.objects) if page else []
    while page is not None and page.token:
        page = collector.ContinueRetrievePropertiesEx(page.token)
        objects += page.objects
    return objects


def read_objects(
    collector: Any, objs: Sequence[Any], obj_type: Any, props: list[str]
) -> list[tuple[Any, dict[str, Any]]]:
    """These objects (found before: read by reference, not every object searched) with `props`, in one round trip."""
    if not objs:
        return []
    spec = PropertyCollector.FilterSpec(
        objectSet=[PropertyCollector.ObjectSpec(obj=obj, skip=False) for obj in objs],
        propSet=[PropertyCollector.PropertySpec(type=obj_type, pathSet=props)],
    )
    return [(o.obj, {p.name: p.val for p in o.propSet}) for o in retrieve_all(collector, [spec])]


def guest_of(props: dict[str, Any]) -> GuestState:
    return GuestState(
        str(props.get("runtime.powerState", "unknown")),
        str(props.get("guest.guestHeartbeatStatus") or "gray"),
        str(props.get("guest.ipAddress") or ""),
    )


def task_of(props: dict[str, Any]) -> TaskState:
    error = props.get("info.error")
    return TaskState(str(props.get("info.state", "unknown")), str(getattr(error, "msg", "") or error) if error else "")


class UpdatesWatch:
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
                raise TransientError(f"vCenter {self._where}: waiting for the VMs failed: {error_text(exc)}") from None
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
            guests={name: guest_of(self._props[ref]) for ref, name in self._names.items() if self._props.get(ref)},
            tasks={ref: task_of(props) for ref, props in self._props.items() if ref not in self._names and props},
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
