"""The workflow state every step takes and returns: the request, its plan, the progress of each stage
(groups, shutdown, drill, approval, fencing) and the timeline of what was done."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, computed_field

from dcwatch.config import unbuilt_default
from dcwatch.events import ProbeResult
from dcwatch.recovery.fencing import FenceProof
from dcwatch.recovery.plan import Record, RecoveryPlan
from dcwatch.recovery.request import FailoverRequest

if TYPE_CHECKING:  # the probe engine (and asyncio with it) loads only in the steps that probe
    from dcwatch.detection.checks import PlannedCheck

Clock = Callable[[], datetime]
Probe = Callable[[list["PlannedCheck"], str], list[ProbeResult]]  # checks, a round name -> their results


def utcnow() -> datetime:
    return datetime.now(UTC)


T = TypeVar("T")


def run_now(key: str, action: Callable[[], T]) -> T:
    """No memory of earlier runs: for dry runs of the steps and tests that do not retry."""
    return action()


class _Camel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True, defer_build=True)


class TimelineEntry(_Camel):
    step: str
    at: datetime = Field(description="when the step ended")
    detail: str
    started: datetime | None = Field(default=None, description="when the step began (its first attempt)")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def duration_s(self) -> float:
        return round((self.at - self.started).total_seconds(), 3) if self.started else 0.0


class Progress(_Camel):
    group: int = 0
    group_ready: bool = Field(default=True, alias="groupReady")
    all_groups_up: bool = Field(default=False, alias="allGroupsUp")
    tasks: dict[str, str] = Field(default={}, description="task id by VM name, current group")
    group_deadline: datetime | None = Field(default=None, alias="groupDeadline")
    powered_on: list[str] = Field(default=[], alias="poweredOn")
    dns_changes: list[str] = Field(default=[], alias="dnsChanges")
    dns_deadline: datetime | None = Field(default=None, alias="dnsDeadline")
    dns_in_sync: bool = Field(
        default=False, alias="dnsInSync", description="changes INSYNC and the answers verified: DNS is done"
    )
    dns_started_at: datetime | None = Field(default=None, alias="dnsStartedAt")
    ready: list[str] = Field(default=[], description="VMs of the current group that are up")
    group_started_at: datetime | None = Field(default=None, alias="groupStartedAt")
    waves: int = Field(default=0, description="power-on batches issued in the current group")
    promoted: bool = False
    hook_failures: list[str] = Field(default=[], alias="hookFailures", description="failed hooks set to continue")
    ttl_expires_at: datetime | None = Field(default=None, alias="ttlExpiresAt", description="old TTLs run out")
    ttl_wait_s: int = Field(default=0, alias="ttlWaitSeconds", description="until then: the Wait before shutdown")
    ttl_changes: list[str] = Field(default=[], alias="ttlChanges", description="the TTL lowering, values unchanged")


class ShutdownProgress(_Camel):
    """Migration and failback: the leaving site's groups, shut down last group first."""

    group: int = 0
    group_done: bool = Field(default=True, alias="groupDone")
    all_off: bool = Field(default=False, alias="allOff")
    deadline: datetime | None = None
    forced: bool = Field(default=False, description="the current group's stragglers were powered off")
    how: dict[str, str] = Field(default={}, description="how each VM went down: guest shutdown, powered off, ...")


class DrillProgress(_Camel):
    """What a drill found, made and measured: the records its cleanup restores, its clones, its own timeline."""

    records_before: list[Record] = Field(default=[], alias="recordsBefore", description="no values: absent")
    leftovers: list[str] = Field(default=[], description="earlier drills' clones this one removed first")
    datastore: str | None = Field(default=None, description="where the snapshot hook presented the replica")
    clone_tasks: dict[str, str] = Field(default={}, alias="cloneTasks", description="task id by clone name")
    clone_deadline: datetime | None = Field(default=None, alias="cloneDeadline")
    isolated: list[str] = Field(default=[], description="clones whose NICs are on the drill network")
    clones_ready: bool = Field(default=False, alias="clonesReady", description="made and isolated, all of them")
    measured: dict[str, float] = Field(default={}, description="seconds from the start, per milestone reached")
    cleanup: str | None = None
    lease_problem: str | None = Field(default=None, alias="leaseProblem", description="the lock, lost meanwhile")


Gate = Literal["plan", "fencing"]  # which approval: the modes the config gates, or an unproven fence


class ApprovalGate(_Camel):
    required: bool = False
    timeout_seconds: int = Field(default=0, alias="timeoutSeconds")
    decision: dict[str, Any] | None = Field(default=None, description="what the operator answered")


class WorkflowState(_Camel):
    request: FailoverRequest
    plan: RecoveryPlan
    shutdown: ShutdownProgress = unbuilt_default(ShutdownProgress)
    drill: DrillProgress = unbuilt_default(DrillProgress)
    approval: ApprovalGate = unbuilt_default(ApprovalGate)
    incident_id: str = Field(alias="incidentId")
    poll_seconds: int = Field(alias="pollSeconds")
    started_at: datetime = Field(alias="startedAt")
    progress: Progress = unbuilt_default(Progress)
    timeline: list[TimelineEntry] = []
    error: dict[str, Any] | None = None
    failed_step: str | None = Field(default=None, alias="failedStep")
    fencing: str | None = Field(default=None, description="what fencing did, or why it was not possible")
    fence_error: dict[str, Any] | None = Field(
        default=None, alias="fenceError", description="why the Fence step did not power the failed site off"
    )
    fence_proof: FenceProof | None = Field(
        default=None, alias="fenceProof", description="that the failed site cannot serve, or why it is not proven"
    )
    fence_approval: ApprovalGate = Field(
        default=unbuilt_default(ApprovalGate),
        alias="fenceApproval",
        description="a human's answer when fencing is not proven",
    )
    cleanup_error: dict[str, Any] | None = Field(default=None, alias="cleanupError", description="a drill's")
    notify_error: dict[str, Any] | None = Field(
        default=None, alias="notifyError", description="why the outcome's notification failed after its retries"
    )
    storage: str | None = Field(default=None, description="what the storage check found")
    report_url: str | None = Field(
        default=None, alias="reportUrl", description="where the run's report page is kept, once written"
    )
    run_id: str = Field(default="", alias="runId", description="this execution's key for steps that act once")
    lease_owner: str = Field(
        default="", alias="leaseOwner", description="who holds the lock for this execution: its execution name"
    )

    def note(self, step: str, detail: str, clock: Clock, started: datetime | None = None) -> WorkflowState:
        self.timeline.append(TimelineEntry(step=step, at=clock(), detail=detail, started=started))
        return self

    def stamp_started(self, begun: datetime, since: int = 0) -> None:
        """Entries the running step added without a start of their own began when the step did."""
        for entry in self.timeline[since:]:
            if entry.started is None:
                entry.started = begun

    def key(self, *parts: object) -> str:
        """The idempotency key of one action of this run: a retry finds it, a new execution does not."""
        return "/".join([self.run_id or self.incident_id, *map(str, parts)])

    @property
    def fencing_approved_by(self) -> str | None:
        """Who approved promoting the standby although the failed site was not proven fenced."""
        decision = self.fence_approval.decision or {}
        return str(decision.get("by", "?")) if decision.get("approved") is True else None

    @property
    def owner(self) -> str:
        """The lock holder's name: unique per execution, so two executions never both hold the lock."""
        return self.lease_owner or self.run_id or self.incident_id

    def dump(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
