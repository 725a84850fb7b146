"""What operators change by hand: the automation switch, maintenance windows, acknowledgements, approval
answers. All audited. The CLI calls these; so does the `control` function the Lambda console invokes."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, RootModel, StringConstraints, ValidationError

from dcwatch.config import Config, MaintenanceWindow
from dcwatch.detection.decision import describe_window
from dcwatch.model import AutomationSwitch
from dcwatch.ports import StateStore
from dcwatch.recovery.steps.approval import approval_answer

AUTOMATION_AUDIT = "automation"
MAINTENANCE_AUDIT = "maintenance"
APPROVAL_AUDIT = "approval"
MAX_MAINTENANCE = timedelta(days=7)


def switch_automation(
    store: StateStore, enabled: bool, reason: str, by: str, now: datetime, caller: str | None = None
) -> AutomationSwitch:
    """Turn automatic failover on or off; the evaluator reads the switch before every failover it would start."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    previous = store.automation()
    switch = AutomationSwitch(enabled, reason.strip(), by, now)
    store.set_automation(
        switch,
        audit=(
            AUTOMATION_AUDIT,
            {
                "kind": "automation",
                "enabled": enabled,
                "previouslyEnabled": previous.enabled,
                "reason": switch.reason,
                "by": by,
                "caller": caller,
                "decidedAt": now,
                "explanation": f"{by} switched {switch.describe()}",
            },
        ),
    )
    return switch


def acknowledge(
    store: StateStore, incident_id: str, reason: str, by: str, now: datetime, caller: str | None = None
) -> str:
    """Let a failover held back by the cooldown start: a human has looked at it and agrees."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    last = store.last_failover()
    previous = f"; the last failover was {last.incident} at {last.at.isoformat()}" if last else ""
    text = f"{by} acknowledged {incident_id}: a failover for it may start within the cooldown{previous}"
    record: dict[str, object] = {
        "kind": "acknowledgement",
        "by": by,
        "caller": caller,
        "reason": reason.strip(),
        "decidedAt": now,
        "explanation": text,
    }
    store.acknowledge(incident_id, by, reason.strip(), audit=(incident_id, record))
    return text


def open_maintenance(
    store: StateStore,
    config: Config,
    site: str,
    service: str | None,
    duration: timedelta,
    reason: str,
    by: str,
    now: datetime,
    caller: str | None = None,
) -> MaintenanceWindow:
    """Open a window from now: a site window holds automatic failover of that site back, a service window
    leaves the service's checks out of the site's verdict. Refused, changing nothing, when it names an
    unknown site or service, has no reason, or is not between a second and a week long."""
    problems = []
    sites = [s.name for s in config.sites]
    if site not in sites:
        problems.append(f"unknown site {site!r}; known sites: {', '.join(sites)}")
    services = [s.name for s in config.services]
    if service is not None and service not in services:
        problems.append(f"unknown service {service!r}; known services: {', '.join(services)}")
    if not timedelta(seconds=1) <= duration <= MAX_MAINTENANCE:
        problems.append(f"a window lasts between 1 s and {MAX_MAINTENANCE.days} days, not {duration}")
    if len(reason.strip()) < 3:
        problems.append("a reason is required (--reason), for the audit trail")
    if problems:
        raise ValueError("maintenance window not opened: " + "; ".join(problems))
    window = MaintenanceWindow(site=site, service=service, start=now, end=now + duration, reason=reason.strip())
    store.open_maintenance(
        window,
        audit=(
            MAINTENANCE_AUDIT,
            {
                "kind": "maintenance",
                "site": site,
                "service": service,
                "start": window.start,
                "end": window.end,
                "reason": window.reason,
                "by": by,
                "caller": caller,
                "decidedAt": now,
                "explanation": f"{by} opened a maintenance window: {describe_window(window)}",
            },
        ),
    )
    return window


class Approvals(Protocol):
    """Answers a workflow waiting at its approval gate, by the task token its approval message names."""

    def answer(self, token: str, decision: dict[str, object]) -> None: ...


def answer_approval(
    store: StateStore,
    approvals: Approvals,
    token: str,
    approved: bool,
    reason: str,
    by: str,
    now: datetime,
    caller: str | None = None,
) -> str:
    """Approve or deny a waiting workflow; audited under a fingerprint of the token, never the token itself."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    approvals.answer(token, approval_answer(approved, by, reason.strip(), now, caller))
    word = "approved" if approved else "denied"
    text = f"{by} {word} the waiting workflow: " + ("it goes on" if approved else "it stops, nothing is changed")
    fingerprint = hashlib.sha256(token.encode()).hexdigest()[:16]
    store.append_audit(
        APPROVAL_AUDIT,
        {
            "kind": "approval",
            "approved": approved,
            "token": fingerprint,
            "by": by,
            "caller": caller,
            "reason": reason.strip(),
            "decidedAt": now,
            "explanation": text,
        },
    )
    return text


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500), Field(description="why, for the audit")
]
Operator = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=2, max_length=100),
    Field(
        description="who asks, as typed: audited beside the caller as far as AWS tells it (a direct Invoke, the "
        "console's Test included, does not tell the function: CloudTrail's Lambda data events do)"
    ),
]


class ShowAutomation(_Request):
    """Read the automation switch; changes nothing."""

    action: Literal["status"]


class SwitchAutomation(_Request):
    """Switch automatic failover on or off."""

    action: Literal["automation"]
    state: Literal["on", "off"]
    reason: Reason
    by: Operator


class Acknowledge(_Request):
    """Let a failover held back by the cooldown start (the refused second automatic failover)."""

    action: Literal["ack"]
    incident_id: str = Field(
        alias="incidentId",
        pattern=r"^[A-Za-z0-9_-]{1,80}$",
        description="the incident of the DOWN alert, e.g. dc-a-down-20261125T030000Z",
    )
    reason: Reason
    by: Operator


class AnswerApproval(_Request):
    """Approve or deny a workflow waiting at its approval gate."""

    action: Literal["approve", "deny"]
    token: str = Field(min_length=1, max_length=1024, description="the task token of the approval message")
    reason: Reason
    by: Operator


class ControlRequest(RootModel[ShowAutomation | SwitchAutomation | Acknowledge | AnswerApproval]):
    """What an operator asks of the `control` function (the Lambda console's Test tab, or any invoke)."""

    model_config = ConfigDict(defer_build=True)

    root: Annotated[ShowAutomation | SwitchAutomation | Acknowledge | AnswerApproval, Field(discriminator="action")]


class ControlInputError(ValueError):
    """A control request that cannot run: every bad field named; nothing was changed."""


def parse_control(event: object) -> ShowAutomation | SwitchAutomation | Acknowledge | AnswerApproval:
    try:
        return ControlRequest.model_validate(event).root
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"][1:] if not isinstance(p, int)) or "(request)"
            problems.append(f"{where}: {error['msg']}")
        raise ControlInputError(
            "control request refused, nothing changed: "
            + "; ".join(problems)
            + ". Expected one of: {action: status}, {action: automation, state: on|off, reason, by}, "
            "{action: ack, incidentId, reason, by}, {action: approve|deny, token, reason, by}"
        ) from None


def invoked_by(request_id: str) -> str:
    """The control function's caller as far as it can know it. A direct Invoke (the console's Test tab, the
    CLI's lambda invoke) hands Lambda no caller: the event is whatever the caller wrote, so a caller named in
    it proves nothing. CloudTrail's Lambda data events name the real one, for this invocation."""
    return f"not told to the function (direct Invoke, request {request_id}): see CloudTrail's Lambda data events"


def run_control(
    request: ShowAutomation | SwitchAutomation | Acknowledge | AnswerApproval,
    store: StateStore,
    approvals: Approvals,
    now: datetime,
    caller: str | None = None,
) -> dict[str, Any]:
    """Carry the request out through the same audited functions the CLI calls; the state it leaves."""
    if isinstance(request, SwitchAutomation):
        switch = switch_automation(store, request.state == "on", request.reason, request.by, now, caller)
        return {"action": request.action, "automation": _switch(switch)}
    if isinstance(request, Acknowledge):
        text = acknowledge(store, request.incident_id, request.reason, request.by, now, caller)
        return {"action": request.action, "incidentId": request.incident_id, "acknowledged": True, "explanation": text}
    if isinstance(request, AnswerApproval):
        approved = request.action == "approve"
        text = answer_approval(store, approvals, request.token, approved, request.reason, request.by, now, caller)
        return {"action": request.action, "approved": approved, "explanation": text}
    return {"action": request.action, "automation": _switch(store.automation())}


def _switch(switch: AutomationSwitch) -> dict[str, Any]:
    return {
        "enabled": switch.enabled,
        "changedBy": switch.changed_by or None,
        "changedAt": switch.changed_at.isoformat() if switch.changed_at else None,
        "reason": switch.reason or None,
        "description": switch.describe(),
    }
