"""ValidateRequest: the accepted request becomes the workflow state, with its plan and its lock owner."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from dcwatch.config import MANUAL_PREFIX, Config
from dcwatch.config.workflow import DRILL_RUN_LENGTH
from dcwatch.errors import DrillHeldBack
from dcwatch.recovery.plan import build_plan
from dcwatch.recovery.request import MODE_WORDS, Origin, manual_incident, parse_request
from dcwatch.recovery.scheduled import HoldBack
from dcwatch.recovery.state import ApprovalGate, Clock, WorkflowState, utcnow


def validate_request(
    raw: Any,
    config: Config,
    clock: Clock = utcnow,
    *,
    active_site: str | None = None,
    site_status: Callable[[str], str] | None = None,
    execution: str | None = None,
    origin: Origin | None = None,
    hold_back: HoldBack | None = None,
) -> WorkflowState:
    """The accepted request and its plan; `execution` (the Step Functions execution name) owns the lock.

    A forced request (data loss accepted, the standby's agent overridden) waits for a human's approval.
    A scheduled drill that `hold_back` gives reasons against: DrillHeldBack, nothing changed."""
    request = parse_request(raw, config, active_site, site_status, origin)
    now = clock()
    if request.trigger == "scheduled" and hold_back is not None and (reasons := hold_back.reasons(now)):
        raise DrillHeldBack("; ".join(reasons))
    name = execution or (origin.execution if origin else None)
    incident = request.incident_id or (
        manual_incident(name) if name else f"{MANUAL_PREFIX}{request.from_site}-{now:%Y%m%dT%H%M%SZ}"
    )
    gate = config.workflow.approval
    run_id = f"{incident}-{uuid.uuid4().hex[:12]}"
    forced = request.force and not request.dry_run
    state = WorkflowState(
        request=request,
        plan=build_plan(config, request.from_site, request.to, request.mode, run=uuid.uuid4().hex[:DRILL_RUN_LENGTH]),
        incident_id=incident,
        poll_seconds=config.workflow.poll_s,
        started_at=now,
        approval=ApprovalGate(required=request.mode in gate.modes or forced, timeout_seconds=gate.timeout_s),
        fence_approval=ApprovalGate(timeout_seconds=gate.timeout_s),
        run_id=run_id,
        lease_owner=name or run_id,
    )
    how = "dry run" if request.dry_run else request.trigger
    detail = f"{how} {MODE_WORDS[request.mode]} {request.from_site} -> {request.to}: {request.reason}"
    detail += "; forced: it waits for a human's approval" if forced else ""
    return state.note("ValidateRequest", detail, clock)
