"""A recovery execution that Step Functions ended without any of our states running.

An operator's StopExecution (ABORTED) or the machine's TimeoutSeconds (TIMED_OUT) ends the workflow
where it stands: no NotifyFailure, no audit record, no ReleaseLease. Step Functions then emits a
"Step Functions Execution Status Change" event (source aws.states) to the account's default bus; a
rule feeds it to the `ExecutionEnded` function, which does what the workflow could not: give back the
lock if that execution still holds it (and no one else's), write the audit record, and tell the
operators to check by hand what the stopped run may have left half done. FAILED needs none of this:
every Task's Catch runs NotifyFailure and ReleaseLeaseAfterFailure before the Fail state.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from dcwatch.config import Config
from dcwatch.ports import AuditLog, Leases, Notifier, Once
from dcwatch.recovery.request import incident_of
from dcwatch.subjects import alert_subject

STATES_SOURCE = "aws.states"
EXECUTION_STATUS_CHANGE = "Step Functions Execution Status Change"
# The statuses no state of ours sees: Step Functions ends the execution itself.
ENDED_UNHANDLED = ("ABORTED", "TIMED_OUT")
ENDED_HOW = {"ABORTED": "was stopped", "TIMED_OUT": "timed out"}

ExecutionStatus = Literal["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED", "PENDING_REDRIVE"]


class ExecutionStatusChange(BaseModel):
    """The `detail` of AWS's event; the fields dcwatch reads (AWS adds others, e.g. redriveCount: ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True, defer_build=True)

    execution_arn: str = Field(alias="executionArn")
    state_machine_arn: str = Field(alias="stateMachineArn")
    name: str = Field(min_length=1, description="the execution's name: it owns the failover lock")
    status: ExecutionStatus
    start_date: int = Field(alias="startDate", ge=0, description="epoch milliseconds")
    stop_date: int | None = Field(default=None, alias="stopDate", description="epoch milliseconds; null while running")
    input: str | None = Field(default=None, description="the execution input, a JSON string")
    error: str | None = None
    cause: str | None = None

    def request(self) -> dict[str, Any]:
        """The execution input as a dict; {} when it is missing or not a JSON object."""
        try:
            raw = json.loads(self.input or "")
        except ValueError:
            return {}
        return raw if isinstance(raw, dict) else {}

    @property
    def incident_id(self) -> str:
        """The request's incidentId when it can be this execution's, else the one the workflow gives it."""
        return incident_of(self.request().get("incidentId"), self.name)


def execution_ended_pattern(state_machine_arn: str) -> dict[str, Any]:
    """The EventBridge pattern (default bus) of this state machine's executions that ended unhandled."""
    return {
        "source": [STATES_SOURCE],
        "detail-type": [EXECUTION_STATUS_CHANGE],
        "detail": {"stateMachineArn": [state_machine_arn], "status": list(ENDED_UNHANDLED)},
    }


def _time(epoch_ms: int | None) -> str | None:
    return None if epoch_ms is None else datetime.fromtimestamp(epoch_ms / 1000, UTC).isoformat()


def history_link(execution_arn: str) -> str:
    """The execution's page in the Step Functions console (the commercial partition's address)."""
    parts = execution_arn.split(":")
    region = parts[3] if len(parts) > 3 else ""
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def audit_record(change: ExecutionStatusChange, lock: str) -> dict[str, Any]:
    return {
        "incidentId": change.incident_id,
        "outcome": change.status.lower(),
        "status": change.status,
        "executionName": change.name,
        "executionArn": change.execution_arn,
        "startedAt": _time(change.start_date),
        "stoppedAt": _time(change.stop_date),
        "request": change.request() or change.input,
        "error": change.error,
        "cause": change.cause,
        "lock": lock,
    }


def _to_check(change: ExecutionStatusChange, config: Config | None) -> list[str]:
    request = change.request()
    to, leaving = str(request.get("to", "the standby site")), str(request.get("from", "the site it left"))
    services = config.services if config else []
    vms = sorted({vm.name for s in services if to in s.sites for vm in s.sites[to].vms})
    records = sorted({s.dns.name for s in services})
    return [
        f"Standby VMs at {to}: which are powered on ({', '.join(vms) or 'see the config'}); "
        "the run may have started some and not others",
        f"DNS records ({', '.join(records) or 'see the config'}): whether they point to {to} or still to {leaving}, "
        "and their TTL if the run lowered it",
        f"Fencing and shutdown at {leaving}: which of its VMs the run powered off",
        f"The execution history: the last state entered says how far it got: {history_link(change.execution_arn)}",
    ]


def ended_message(change: ExecutionStatusChange, lock: str, config: Config | None = None) -> tuple[str, str]:
    """(subject, body) of the alert: the operators must act, and the body says on what."""
    how = ENDED_HOW.get(change.status, f"ended {change.status}")
    subject = alert_subject(f"ACTION NEEDED: failover {change.name} {how} ({change.status})")
    request = change.request()
    lines = [
        f"The recovery execution {change.name} {how} ({change.status}) before it finished: Step Functions ended it, "
        "so none of its own failure handling ran and nothing was rolled back.",
        "",
        f"Mode: {request.get('mode', '?')}, from {request.get('from', '?')} to {request.get('to', '?')}, "
        f"dry run: {request.get('dryRun', False)}",
        f"Started: {_time(change.start_date)}; ended: {_time(change.stop_date) or '?'}",
        *([f"Error: {change.error}" + (f": {change.cause}" if change.cause else "")] if change.error else []),
        f"Lock: {lock}",
        "",
        "Check by hand:",
        *[f"- {line}" for line in _to_check(change, config)],
        "",
        f"Execution: {change.execution_arn}",
        f"Incident: {change.incident_id}",
    ]
    return subject, "\n".join(lines)


def _lock(released: bool, name: str, leases: Leases) -> str:
    if released:
        return f"released (it was held by {name}); another failover can start"
    holder = leases.holder()
    if holder is None:
        return f"not held by {name} (free: nothing to release)"
    return f"not held by {name}; held by {holder.owner} until {holder.expires_at.isoformat()} (left alone)"


def execution_ended(
    change: ExecutionStatusChange,
    leases: Leases,
    store: AuditLog,
    notifier: Notifier,
    once: Once,
    config: Config | None = None,
) -> str:
    """Release the execution's own lock, audit, alert: each once per execution and status. The message id."""
    key = f"ended/{change.execution_arn}/{change.status}"
    released = once(f"{key}/release", lambda: leases.release(change.name))
    lock = _lock(released, change.name, leases)
    once(f"{key}/audit", lambda: store.append_audit(change.incident_id, audit_record(change, lock)))
    subject, message = ended_message(change, lock, config)
    return once(f"{key}/notify", lambda: notifier.publish(subject, message))


def request_failed(
    raw: Any, execution: str, error: dict[str, Any], leases: Leases, store: AuditLog, notifier: Notifier, once: Once
) -> str:
    """ValidateRequest failed, not for a bad request (its retries ran out, it timed out): the lock taken for
    this execution would otherwise block every failover for lease_s, during a real outage, unannounced.
    Release it, audit, alert: each once per execution. The message id."""
    request = raw if isinstance(raw, dict) else {}
    incident = request.get("incidentId") if isinstance(request.get("incidentId"), str) else None
    incident = incident or execution
    cause = str(error.get("Cause", ""))
    key = f"request-failed/{execution}"
    released = once(f"{key}/release", lambda: leases.release(execution))
    lock = _lock(released, execution, leases)
    record = {
        "incidentId": incident,
        "outcome": "request-failed",
        "executionName": execution,
        "request": raw,
        "error": error.get("Error"),
        "cause": cause,
        "lock": lock,
    }
    once(f"{key}/audit", lambda: store.append_audit(incident, record))
    subject = alert_subject(f"ACTION NEEDED: failover {execution} could not check its request ({error.get('Error')})")
    lines = [
        f"The recovery execution {execution} stopped at ValidateRequest: {error.get('Error', 'error')}: {cause}",
        "Nothing was changed: no VM, no DNS record. The request was not refused as bad: checking it failed.",
        f"Mode: {request.get('mode', request.get('action', '?'))}, from {request.get('from', '?')} "
        f"to {request.get('to', '?')}",
        f"Lock: {lock}",
        "Fix the cause (the Steps function's log has the error), then start the request again.",
        "",
        f"Incident: {incident}",
    ]
    return once(f"{key}/notify", lambda: notifier.publish(subject, "\n".join(lines)))
