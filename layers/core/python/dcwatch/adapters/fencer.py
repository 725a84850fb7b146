"""Fencing a site from inside: power off its service VMs through the local vCenter, and/or run its
fence hook. Every part is bounded in time; what fails is reported, never raised, so one failed part
does not stop the other."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dcwatch.adapters.hooks import HookCaller
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import VsphereInventory
from dcwatch.config import Hook, VCenter
from dcwatch.ports import HookRunner

POLL_S = 0.2


@dataclass(frozen=True)
class FenceOutcome:
    powered_off: list[str] = field(default_factory=list)  # VMs off once the fence is done (already off included)
    errors: list[str] = field(default_factory=list)


class SiteFencer:
    def __init__(
        self,
        *,
        site: str,
        vcenter: VCenter,
        credentials: Callable[[], Credentials],
        vms: Sequence[str],
        power_off: bool,
        hook: Hook | None,
        timeout_s: float,
        hooks: HookRunner | None = None,
    ):
        self.site, self.vcenter, self._credentials = site, vcenter, credentials
        self.vms, self.power_off, self.hook, self.timeout_s = list(vms), power_off, hook, timeout_s
        self._hooks = hooks or HookCaller()

    def fence(self, reason: str, agent_id: str, at: datetime) -> FenceOutcome:
        off: list[str] = []
        errors: list[str] = []
        if self.power_off and self.vms:
            try:
                off = self._power_off()
            except Exception as exc:  # noqa: BLE001 - the hook still runs; the fence reports what failed
                errors.append(f"vCenter {self.vcenter.url}: {exc}"[:300])
            missing = sorted(set(self.vms) - set(off))
            if missing and not errors:
                errors.append(f"VMs still on or not found: {', '.join(missing)}")
        if self.hook is not None:
            payload = {"mode": "fence", "site": self.site, "reason": reason, "agentId": agent_id, "at": at.isoformat()}
            result = self._hooks.run(self.hook, payload)
            if not result.ok:
                errors.append(f"fence hook {self.hook.name}: {result.detail}")
        return FenceOutcome(off, errors)

    def _power_off(self) -> list[str]:
        """Start every power-off, then wait for the VMs to be off, until `timeout_s`."""
        deadline = time.monotonic() + self.timeout_s
        with VsphereInventory.connect(self.vcenter, self._credentials(), timeout_s=self.timeout_s) as inventory:
            inventory.power_off(self.vms)
            while True:
                states = inventory.power_states(self.vms)
                off = sorted(name for name, state in states.items() if state == "poweredOff")
                if len(off) == len(states) or time.monotonic() >= deadline:
                    return off
                time.sleep(POLL_S)
