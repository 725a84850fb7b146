"""The `workflow` and `drill` sections: a recovery's waits, approvals and lock, the step Lambda's time budget,
and the longest run a config allows (the state machine's time limit)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from dcwatch.config.checks import AnyCheck
from dcwatch.config.fields import ConfigModel, Name, RecoveryMode, unbuilt_default
from dcwatch.config.schedule import ScheduleError, parse_expression, zone
from dcwatch.config.sites import DnsRecord, Hook

if TYPE_CHECKING:
    from dcwatch.config.schema import Config


class Approval(ConfigModel):
    """An operator's approve/deny before a mode changes anything (Step Functions waitForTaskToken)."""

    modes: list[RecoveryMode] = Field(default=[], description="the modes that wait for approval; none by default")
    timeout_s: int = Field(
        default=900,
        ge=1,
        le=1800,
        description="no answer within this long: the workflow stops, nothing changed "
        "(at most 1800: the whole workflow is bounded by an hour)",
    )


# Every workflow step Lambda's timeout (`dcwatch.wiring` gives it to the step functions); the hooks one step runs
# (`dcwatch.config.hooks`), one after the other, must leave it STEP_OWN_WORK_S for its own work (vCenter session,
# power-ons, idempotency records). Both bound this section's step_wait_s, so they live with the config, which
# wiring imports (a home in wiring would close the circle config -> wiring -> recovery.executions -> config).
STEP_TIMEOUT_S = 60
STEP_OWN_WORK_S = 15
# The failover state machine's TimeoutSeconds in failover.asl.json (a test keeps them equal): raised per config to
# its longest possible run (`workflow_timeout_s`), never lowered; the other steps' own work is given this margin.
WORKFLOW_TIMEOUT_S = 3600
WORKFLOW_STEPS_MARGIN_S = 10 * STEP_TIMEOUT_S


class Workflow(ConfigModel):
    poll_s: int = Field(
        default=5,
        ge=1,
        description="the state machine's wait between two CheckGroup or CheckDns steps, once one step's wait "
        "(step_wait_s) did not see the group up or DNS in sync",
    )
    step_wait_s: int = Field(
        default=20,
        ge=0,
        le=STEP_TIMEOUT_S - STEP_OWN_WORK_S,
        description="how long CheckGroup and CheckDns wait inside one invocation for the group to come up or DNS "
        "to be in sync, seeing it as it happens (0: look once); below the step Lambda's timeout",
    )
    group_timeout_s: int = Field(default=600, ge=1, description="deadline for one priority group")
    dns_timeout_s: int = Field(default=300, ge=1, description="deadline for Route 53 INSYNC")
    shutdown_timeout_s: int = Field(
        default=300,
        ge=1,
        description="migration and failback: how long one group's guests may take to shut down before "
        "their VMs are powered off",
    )
    approval: Approval = unbuilt_default(Approval)
    rto_target_s: int | None = Field(
        default=None,
        gt=0,
        description="the recovery time objective the reports judge against (PASS within it): seconds from the "
        "detection's start (else the workflow's) to the service records in sync and verified at the target site; "
        "for a drill, to its drill records in sync",
    )
    lease_s: int = Field(
        default=900,
        ge=30,
        description="the failover lock's lease, renewed before each priority group and before the DNS switch; "
        "must outlast group_timeout_s and dns_timeout_s",
    )

    @model_validator(mode="after")
    def _lease_outlasts_waits(self) -> Workflow:
        waits = [self.group_timeout_s, self.dns_timeout_s, self.shutdown_timeout_s]
        waits += [self.approval.timeout_s] if self.approval.modes else []
        longest = max(waits) + LEASE_MARGIN_S
        if self.lease_s < longest:
            raise ValueError(
                f"lease_s {self.lease_s} must be at least the longest wait between renewals plus "
                f"{LEASE_MARGIN_S} s ({longest}): the lock would expire while the workflow still runs"
            )
        return self


LEASE_MARGIN_S = 60


class DrillService(ConfigModel):
    name: Name = Field(description="a service of `services`: its standby VMs are cloned, and the clones proven")
    dns: DnsRecord = Field(
        description="the drill record, pointed at the clones during the drill and restored after it; "
        "never a production record"
    )
    dns_values: list[str] = Field(
        min_length=1,
        description="the clones' addresses on the drill network: what the drill record answers during the drill",
    )
    checks: list[AnyCheck] = Field(
        min_length=1,
        description="the service's checks against the clones at their drill addresses (never the production "
        "addresses); private by default: only the VPC reaches the drill network, over the VPN",
    )


# A clone is named `<vm>-drill-<run>`; vSphere allows 80 characters in a VM's name.
DRILL_CLONE_INFIX = "-drill-"
DRILL_RUN_LENGTH = 8
VM_NAME_MAX = 80


def clone_name(vm: str, run: str) -> str:
    """The name of `vm`'s clone in drill `run`: found again by it (and its mark) after a drill died mid-way."""
    return f"{vm}{DRILL_CLONE_INFIX}{run}"


def clone_origin(name: str) -> str | None:
    """The VM whose drill clone `name` is (`clone_name` read backwards), None for a name no drill gives."""
    vm, infix, run = name.rpartition(DRILL_CLONE_INFIX)
    is_run = len(run) == DRILL_RUN_LENGTH and all(c in "0123456789abcdef" for c in run)
    return vm if infix and vm and is_run else None


class DrillSchedule(ConfigModel):
    """A drill on a schedule (an EventBridge Scheduler schedule in the stack): a drill from whichever site is
    active at the time to the other, held back and recorded as skipped while anything says not now."""

    expression: str = Field(
        description="an EventBridge Scheduler expression: `cron(minutes hours day-of-month month day-of-week "
        "year)` (e.g. `cron(0 3 ? * TUE *)`) or `rate(N minutes|hours|days)`"
    )
    time_zone: str = Field(default="UTC", description="the IANA time zone a cron is read in, e.g. Europe/Berlin")
    reason: str = Field(
        default="scheduled drill", min_length=3, description="the drill's reason, in its notification and audit"
    )

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        try:
            parse_expression(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value.strip()

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zone(value)
        except ScheduleError as exc:
            raise ValueError(str(exc)) from None
        return value

    def request(self) -> dict[str, str]:
        """What the schedule starts the workflow with: from and to are left to the workflow, which reads the
        active site when the drill runs (production may have moved since the schedule was made)."""
        return {"mode": "drill", "trigger": "scheduled", "reason": self.reason}


class Drill(ConfigModel):
    """What a drill proves, and where: clones of the standby VMs of these services, on an isolated network,
    reached through their drill records only. The standby VMs themselves are never powered on or changed."""

    services: list[DrillService] = Field(min_length=1)
    network: str = Field(
        min_length=1,
        description="the isolated network (port group) at the standby: every NIC of every clone is moved to it "
        "before any clone powers on",
    )
    folder: str | None = Field(
        default=None, min_length=1, description="the VM folder the clones are made in (the standby VM's if unset)"
    )
    resource_pool: str | None = Field(
        default=None,
        min_length=1,
        description="the resource pool the clones run in (the standby VM's if unset)",
    )
    snapshot_hook: Hook | None = Field(
        default=None,
        description="presents a point-in-time snapshot of the replica to the standby's hosts, before the clones "
        'are made; its answer names the datastore it appears as (`{"datastore": NAME}`), which the clones are '
        "made on. Without it, the clones are made from the standby VMs' own disks",
    )
    snapshot_cleanup_hook: Hook | None = Field(
        default=None, description="removes the snapshot the snapshot hook presented, once the clones are destroyed"
    )
    clone_timeout_s: int = Field(default=600, ge=1, description="deadline for every clone to be made and isolated")
    schedule: DrillSchedule | None = Field(
        default=None, description="run the drill on a schedule (EventBridge Scheduler); by hand only when unset"
    )

    @field_validator("snapshot_hook", "snapshot_cleanup_hook")
    @classmethod
    def _runs_in_drills(cls, hook: Hook | None) -> Hook | None:
        if hook is not None and "modes" in hook.model_fields_set and "drill" not in hook.modes:
            raise ValueError(f"modes: {hook.modes} leaves out drill, the only mode this hook runs in")
        return hook


def longest_run(config: Config) -> tuple[int, str]:
    """A recovery's longest possible run, its waits at their timeouts (seconds), and its sum in words, by knob:
    approvals, the TTL wait, the leaving site's shutdown groups, a drill's clones, the standby's groups, DNS."""
    w = config.workflow
    longest: tuple[int, str] = (0, "")
    for standby in config.sites:
        leaving = config.other_site(standby.name)
        groups = {vm.group for s in config.services if standby.name in s.sites for vm in s.sites[standby.name].vms}
        shut = {vm.group for s in config.services if leaving in s.sites for vm in s.sites[leaving].vms}
        power_on = sum(standby.priority_group(n).timeout_s or w.group_timeout_s for n in groups)
        ttl = max((s.dns.ttl for s in config.services), default=0)
        own: dict[RecoveryMode, list[tuple[str, int]]] = {
            "disaster": [("approval.timeout_s (fencing not proven)", w.approval.timeout_s)],
            "migration": [
                ("the TTL wait", ttl),
                (f"shutdown_timeout_s x {len(shut)}", w.shutdown_timeout_s * len(shut)),
            ],
        }
        own["failback"] = own["migration"]
        if config.drill is not None:  # its groups are some of the standby's: bounded by theirs
            own["drill"] = [("drill.clone_timeout_s", config.drill.clone_timeout_s)]
        for mode, waits in own.items():
            parts = [("approval.timeout_s", w.approval.timeout_s)] if mode in w.approval.modes else []
            parts += [*waits, (f"{len(groups)} groups' timeout_s", power_on), ("dns_timeout_s", w.dns_timeout_s)]
            total = sum(s for _, s in parts)
            if total > longest[0]:
                words = " + ".join(f"{name} {s}" for name, s in parts if s)
                longest = (total, f"a {mode} to {standby.name}: {words}")
    return longest


def workflow_timeout_s(config: Config) -> int:
    """The failover state machine's TimeoutSeconds for `config`: past it, Step Functions stops a run wherever it
    stands (half the groups up, DNS not switched), so it must outlast the longest run the config allows."""
    return max(WORKFLOW_TIMEOUT_S, longest_run(config)[0] + WORKFLOW_STEPS_MARGIN_S)
