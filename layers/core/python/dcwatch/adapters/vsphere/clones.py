"""One site's vCenter as the `DrillLab` port: point-in-time clones of standby VMs (`CloneVM_Task`), their NICs
moved to the drill's isolated network (`ReconfigVM_Task`), found again by name and mark, and destroyed. Over the
inventory's session, read through its PropertyCollector, tasks started and refused as its power tasks are.

The mark. A clone carries it in `config.extraConfig` (`dcwatch.drill.original` and `dcwatch.drill.run`), set by
the CloneVM_Task's own `spec.config`: vCenter writes it with the clone, so a drill killed right after cloning
leaves a clone that is found again. Not the annotation: vcsim (govmomi 0.24) applies only the extraConfig and
instanceUuid of a clone's config spec, so an annotation would be lost there. Not a custom field: it is set on
the new VM after the clone (`CustomFieldsManager.SetField`), so a kill in between leaves an unmarked clone, and
it needs a field defined vCenter-wide. Not a tag: tags live in the vAPI REST endpoint, not in SOAP. The keys are
outside `guestinfo.*`, which a guest's VMware Tools may write: no guest can mark its own VM as a clone.

A VM is a drill clone only when it carries the mark AND its name is the clone name the mark says
(`clone_name(original, run)`): neither a name mistake nor a mark copied into another VM makes a production VM
one that a drill changes or destroys; such a VM is refused (`NotADrillClone`) and left as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from pyVmomi import vim

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere.collector import read_objects, read_properties
from dcwatch.adapters.vsphere.inventory import VsphereInventory, transient_faults
from dcwatch.adapters.vsphere.power import start_each
from dcwatch.config import VCenter
from dcwatch.config.workflow import DRILL_CLONE_INFIX, clone_name
from dcwatch.errors import DcwatchError, DrillCleanupIncomplete, DrillCloneFailed, NotADrillClone
from dcwatch.ports import DrillClone, TaskState
from dcwatch.recovery.waits import wait_for

MARK_ORIGINAL = "dcwatch.drill.original"
MARK_RUN = "dcwatch.drill.run"
WAIT_S = 120.0  # a reconfiguration, power-off or destroy of a powered-off clone takes seconds
MARK_PROPS = ["name", "config.extraConfig"]
ENDED = ("success", "error")

Found = tuple[Any, dict[str, Any]]


def mark(original: str, run: str) -> list[Any]:
    """The extraConfig a clone of `original` in drill `run` is made with."""
    return [vim.option.OptionValue(key=MARK_ORIGINAL, value=original), vim.option.OptionValue(key=MARK_RUN, value=run)]


def marked(props: Mapping[str, Any]) -> tuple[str, str] | None:
    """(original, run) of a VM named and marked as a drill clone; None for any other VM."""
    options = {str(o.key): str(o.value) for o in props.get("config.extraConfig") or []}
    original, run = options.get(MARK_ORIGINAL), options.get(MARK_RUN)
    if original and run and props.get("name") == clone_name(original, run):
        return original, run
    return None


def _ended(state: TaskState | None) -> bool:
    return state is not None and state.state in ENDED


class VsphereDrillLab:
    """One site's vCenter session, as the `DrillLab` port; waits for its own tasks at most `wait_s`."""

    def __init__(self, inventory: VsphereInventory, wait_s: float = WAIT_S):
        self._inventory, self._si, self._wait_s = inventory, inventory.si, wait_s

    @property
    def where(self) -> str:
        return self._inventory.where

    @classmethod
    @contextmanager
    def connect(
        cls, vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0, wait_s: float = WAIT_S
    ) -> Iterator[VsphereDrillLab]:
        """Over a session of its own (the CLI's cleanup)."""
        with VsphereInventory.connect(vcenter, credentials, timeout_s) as inventory:
            yield cls(inventory, wait_s)

    def _named(self, names: Iterable[str] | None, props: list[str]) -> list[Found]:
        """The VMs named `names` (None: named like a drill clone) with `props`: every VM's name in one read, then
        just those by reference."""
        wanted = None if names is None else set(names)
        refs = [
            obj
            for obj, p in read_properties(self._si, vim.VirtualMachine, ["name"])
            if (DRILL_CLONE_INFIX in str(p.get("name")) if wanted is None else p.get("name") in wanted)
        ]
        return read_objects(self._inventory.collector, refs, vim.VirtualMachine, props)

    def _clones_named(self, names: Sequence[str], props: list[str]) -> dict[str, Found]:
        """Each named VM that exists, refused whole (nothing done to any) if one is not marked as a drill clone."""
        found: dict[str, Found] = {}
        refused = []
        for obj, p in self._named(names, [*MARK_PROPS, *props]):
            name = str(p["name"])
            if marked(p) is None or name in found:
                refused.append(name)
            found[name] = (obj, p)
        if refused:
            raise NotADrillClone(
                f"vCenter {self.where}: {', '.join(sorted(set(refused)))} not marked as a drill clone (or not the only "
                "VM of that name): refused, nothing done to any VM"
            )
        return found

    def _one(self, kind: Any, name: str, what: str, props: Sequence[str] = ()) -> Found:
        """The one object of `kind` named `name` (`what` for the message); DrillCloneFailed if none or several."""
        found = {
            obj._moId: (obj, p)
            for obj, p in read_properties(self._si, kind, ["name", *props])
            if p.get("name") == name and (kind is not vim.Folder or "VirtualMachine" in (p.get("childType") or []))
        }
        if len(found) != 1:
            why = "does not exist at the site" if not found else f"is ambiguous: {len(found)} of that name"
            raise DrillCloneFailed(f"vCenter {self.where}: {what} {name!r} {why}")
        return next(iter(found.values()))

    def _await(self, tasks: Mapping[str, str], what: str, error: type[DcwatchError]) -> None:
        """Until every task (id by VM) has ended, `wait_s` at most; `error` names each VM whose task failed or did
        not end in time, with vCenter's fault."""
        if not tasks:
            return
        deadline = datetime.now(UTC) + timedelta(seconds=self._wait_s)
        with self._inventory.watch(list(tasks), list(tasks.values())) as watch:
            seen = wait_for(
                watch,
                lambda o: all(_ended(o.tasks.get(t)) for t in tasks.values()),
                deadline,
                lambda: datetime.now(UTC),
            )
        states = {vm: seen.tasks.get(task) for vm, task in tasks.items()}
        failed = [f"{vm}: {s.error or 'failed'}" for vm, s in sorted(states.items()) if s and s.state == "error"]
        late = sorted(vm for vm, s in states.items() if not _ended(s))
        if late:
            failed.append(f"not done within {self._wait_s:g} s: {', '.join(late)}")
        if failed:
            raise error(f"vCenter {self.where}: {what} failed: {'; '.join(failed)}")

    @transient_faults
    def clone(
        self,
        clones: Mapping[str, str],
        run: str,
        *,
        datastore: str | None = None,
        folder: str | None = None,
        resource_pool: str | None = None,
    ) -> dict[str, str]:
        by_name: dict[str, list[Found]] = {}
        for obj, p in self._named({*clones, *clones.values()}, [*MARK_PROPS, "parent", "resourcePool"]):
            by_name.setdefault(str(p["name"]), []).append((obj, p))
        sources: dict[str, Found] = {}
        for clone, original in sorted(clones.items()):
            existing = by_name.get(clone, [])
            if any(marked(p) != (original, run) for _, p in existing):
                raise NotADrillClone(
                    f"vCenter {self.where}: {clone} exists and is not marked as the clone of {original} in drill "
                    f"{run}: refused, nothing cloned"
                )
            found = by_name.get(original, [])
            if not existing and len(found) != 1:
                why = "not found" if not found else f"{len(found)} VMs of that name"
                raise DrillCloneFailed(f"vCenter {self.where}: cannot clone {original}: {why}; nothing cloned")
            if not existing:  # one made by an earlier try is kept: a retried clone makes no second copy
                sources[clone] = found[0]
        if not sources:
            return {}
        into = self._one(vim.Folder, folder, "VM folder", ["childType"])[0] if folder else None
        pool = self._one(vim.ResourcePool, resource_pool, "resource pool")[0] if resource_pool else None
        store = self._one(vim.Datastore, datastore, "datastore")[0] if datastore else None
        calls = {}
        for clone, (vm, p) in sources.items():
            spec = vim.vm.CloneSpec(
                location=vim.vm.RelocateSpec(pool=pool or p.get("resourcePool"), datastore=store),
                powerOn=False,
                template=False,
                config=vim.vm.ConfigSpec(extraConfig=mark(clones[clone], run)),
            )
            calls[clone] = partial(vm.CloneVM_Task, folder=into or p["parent"], name=clone, spec=spec)
        return start_each(calls, "clone", already="", error=DrillCloneFailed)

    @transient_faults
    def task_states(self, task_ids: Sequence[str]) -> dict[str, TaskState]:
        return self._inventory.task_states(task_ids)

    def _backing(self, network: str) -> tuple[Any, Any]:
        """The port group `network` at the site, and a NIC backing on it (a DVS port group's or a standard one's)."""
        net, _ = self._one(vim.Network, network, "network")
        if isinstance(net, vim.dvs.DistributedVirtualPortgroup):
            collector, switch = self._inventory.collector, "config.distributedVirtualSwitch"
            [(_, pg)] = read_objects(collector, [net], vim.dvs.DistributedVirtualPortgroup, ["key", switch])
            [(_, dvs)] = read_objects(collector, [pg[switch]], vim.DistributedVirtualSwitch, ["uuid"])
            port = vim.dvs.PortConnection(switchUuid=dvs["uuid"], portgroupKey=pg["key"])
            return net, vim.vm.device.VirtualEthernetCard.DistributedVirtualPortBackingInfo(port=port)
        if isinstance(net, vim.OpaqueNetwork):
            raise DrillCloneFailed(
                f"vCenter {self.where}: network {network!r} is an opaque (NSX) network, not a port group"
            )
        return net, vim.vm.device.VirtualEthernetCard.NetworkBackingInfo(deviceName=network, network=net)

    @transient_faults
    def isolate(self, clones: Sequence[str], network: str) -> None:
        if not clones:
            return
        net, backing = self._backing(network)
        found = self._clones_named(clones, ["config.hardware.device", "network"])
        missing = sorted(set(clones) - set(found))
        if missing:
            raise DrillCloneFailed(f"vCenter {self.where}: drill clones not found: {', '.join(missing)}")
        calls = {}
        for name, (vm, p) in found.items():
            nics = [d for d in p["config.hardware.device"] if isinstance(d, vim.vm.device.VirtualEthernetCard)]
            if all(ref._moId == net._moId for ref in p.get("network") or []) and nics:
                continue  # isolated already (a retry)
            for nic in nics:
                nic.backing = backing
            edits = [vim.vm.device.VirtualDeviceSpec(operation="edit", device=nic) for nic in nics]
            if edits:
                calls[name] = partial(vm.ReconfigVM_Task, vim.vm.ConfigSpec(deviceChange=edits))
        tasks = start_each(calls, f"move the NICs to {network} of", already="", error=DrillCloneFailed)
        self._await(tasks, f"moving the NICs to {network}", DrillCloneFailed)

    @transient_faults
    def clones(self, run: str | None = None) -> list[DrillClone]:
        found = [
            (p, m) for _, p in self._named(None, [*MARK_PROPS, "runtime.powerState", "network"]) if (m := marked(p))
        ]
        refs = {ref._moId: ref for p, _ in found for ref in p.get("network") or []}
        names = {
            obj._moId: str(n["name"])
            for obj, n in read_objects(self._inventory.collector, list(refs.values()), vim.Network, ["name"])
        }
        return sorted(
            (
                DrillClone(
                    str(p["name"]),
                    original,
                    made_by,
                    str(p.get("runtime.powerState", "unknown")),
                    tuple(sorted(names.get(ref._moId, ref._moId) for ref in p.get("network") or [])),
                )
                for p, (original, made_by) in found
                if run is None or made_by == run
            ),
            key=lambda c: c.name,
        )

    @transient_faults
    def destroy(self, clones: Sequence[str]) -> list[str]:
        found = self._clones_named(clones, ["runtime.powerState"])  # names gone already are skipped
        running = {
            name: vm.PowerOffVM_Task for name, (vm, p) in found.items() if p["runtime.powerState"] != "poweredOff"
        }
        powering = start_each(running, "power off", already="poweredOff", error=DrillCleanupIncomplete)
        self._await(powering, "powering off drill clones", DrillCleanupIncomplete)
        tasks = start_each(
            {name: vm.Destroy_Task for name, (vm, _) in found.items()},
            "destroy",
            already="",
            error=DrillCleanupIncomplete,
        )
        self._await(tasks, "destroying drill clones", DrillCleanupIncomplete)
        return sorted(tasks)
