"""The hook schedule: which hooks each workflow step runs for one priority group at one site. The config check
sums them against the step Lambda's budget, CheckGroup keeps the time of those still due free of its wait, and
the stack lets exactly these steps invoke the config's Lambda hooks."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from dcwatch.config.fields import RecoveryMode
    from dcwatch.config.schema import Config
    from dcwatch.config.sites import Hook

# The workflow steps that run a priority group's hooks, in the order they run.
HOOK_STEPS = ("StartGroup", "CheckGroup")
# The steps that run a drill's snapshot hooks: present the replica's snapshot, and remove it.
DRILL_HOOK_STEPS = ("PrepareDrill", "CleanUpDrill")

H = TypeVar("H")


@dataclass(frozen=True)
class Placed:
    """A hook and where the config names it, e.g. `sites[1].groups[0].pre_power_on[0]`."""

    path: str
    hook: Hook


@dataclass(frozen=True)
class GroupHooks(Generic[H]):
    """The hooks of one priority group at one site, by where they hang: `H` is a `Hook` (a recovery plan's
    group) or a `Placed` hook (the config check, which names the field)."""

    pre: list[H] = field(default_factory=list)
    post: list[H] = field(default_factory=list)
    vm_pre: dict[str, list[H]] = field(default_factory=dict)  # by VM, only the VMs that have some
    vm_post: dict[str, list[H]] = field(default_factory=dict)
    waiting: frozenset[str] = frozenset()  # VMs that wait for others (`after`): CheckGroup powers them on
    promote: list[H] = field(default_factory=list)  # the storage promotion, before the site's first group

    def start_group(self) -> list[H]:
        """StartGroup: the promotion, the group's pre hooks, and the pre hooks of the VMs that wait for none."""
        vms = [h for vm, hooks in self.vm_pre.items() if vm not in self.waiting for h in hooks]
        return [*self.promote, *self.pre, *vms]

    def check_group(self, ready: Collection[str] = (), started: Collection[str] | None = None) -> list[H]:
        """CheckGroup: the post hooks of the VMs not `ready` yet, the group's post hooks, and the pre hooks of the
        VMs it still powers on: those not `started` yet (unless said, the VMs that wait for others)."""
        due = [vm for vm in self.vm_pre if (vm in self.waiting if started is None else vm not in started)]
        posts = [h for vm, hooks in self.vm_post.items() if vm not in ready for h in hooks]
        return [*posts, *self.post, *(h for vm in due for h in self.vm_pre[vm])]

    def by_step(self) -> dict[str, list[H]]:
        return dict(zip(HOOK_STEPS, (self.start_group(), self.check_group()), strict=True))

    def hooks_only(self: GroupHooks[Placed]) -> GroupHooks[Hook]:
        def bare(placed: list[Placed]) -> list[Hook]:
            return [p.hook for p in placed]

        return GroupHooks(
            pre=bare(self.pre),
            post=bare(self.post),
            vm_pre={vm: bare(hooks) for vm, hooks in self.vm_pre.items()},
            vm_post={vm: bare(hooks) for vm, hooks in self.vm_post.items()},
            waiting=self.waiting,
            promote=bare(self.promote),
        )


def group_hooks(
    config: Config,
    site: str,
    number: int,
    services: Collection[str] | None = None,
    mode: RecoveryMode | None = None,
) -> GroupHooks[Placed]:
    """The hooks of priority group `number` at `site`: its own, and those of the VMs of `services` (all if None);
    of those, the ones that run in `mode` (every one if None: the config check counts what any mode may run)."""

    def _placed(path: str, hooks: list[Hook]) -> list[Placed]:
        return [Placed(f"{path}[{i}]", h) for i, h in enumerate(hooks) if mode is None or mode in h.modes]

    i, at = next((i, s) for i, s in enumerate(config.sites) if s.name == site)
    vms = [
        (f"services[{k}].sites.{site}.vms[{m}]", vm)
        for k, service in enumerate(config.services)
        if site in service.sites and (services is None or service.name in services)
        for m, vm in enumerate(service.sites[site].vms)
    ]
    members = [(path, vm) for path, vm in vms if vm.group == number]
    j = next((j for j, g in enumerate(at.groups) if g.group == number), None)
    settings = at.priority_group(number)
    first = number == min((vm.group for _, vm in vms), default=number)
    promote = at.storage.promote_hook if at.storage is not None and first else None
    promote = promote if promote is not None and (mode is None or mode in promote.modes) else None
    return GroupHooks(
        pre=_placed(f"sites[{i}].groups[{j}].pre_power_on", settings.pre_power_on),
        post=_placed(f"sites[{i}].groups[{j}].post_power_on", settings.post_power_on),
        vm_pre={vm.name: pre for path, vm in members if (pre := _placed(f"{path}.pre_power_on", vm.pre_power_on))},
        vm_post={vm.name: post for path, vm in members if (post := _placed(f"{path}.post_power_on", vm.post_power_on))},
        waiting=frozenset(vm.name for _, vm in members if vm.after),
        promote=[Placed(f"sites[{i}].storage.promote_hook", promote)] if promote is not None else [],
    )


def recovery_hooks(config: Config) -> list[Hook]:
    """Every hook a recovery may run: the groups' and the VMs' at each site, the storage promotions, and a
    drill's snapshot hooks."""
    hooks = [h for site in config.sites for g in site.groups for h in [*g.pre_power_on, *g.post_power_on]]
    hooks += [h for s in config.services for at in s.sites.values() for vm in at.vms for h in vm.pre_power_on]
    hooks += [h for s in config.services for at in s.sites.values() for vm in at.vms for h in vm.post_power_on]
    hooks += [s.storage.promote_hook for s in config.sites if s.storage and s.storage.promote_hook]
    drill = [config.drill.snapshot_hook, config.drill.snapshot_cleanup_hook] if config.drill else []
    return hooks + [h for h in drill if h is not None]
