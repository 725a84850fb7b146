"""Failover workflow steps in two functions: `step` runs those that need no site, `site_step` (inside the
VPC when there is one) those that reach a site. Each Task state names its step (`"step"` in its Parameters,
`dcwatch.wiring.STEPS` says which function runs it); each step is parse -> one core step -> state out.

One function per step made a failover pay a cold start per step; two pay two. The adapters a step uses
are imported when it first uses them (`dcwatch.runtime`), so pyVmomi loads only for the vCenter steps,
aiohttp only for the probing and hook steps, the X-Ray SDK only when tracing is on.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from dcwatch import runtime
from dcwatch.config import STEP_OWN_WORK_S
from dcwatch.errors import InvalidRequest
from dcwatch.observability import logger, record_notify_failed, tracer, tracing_on
from dcwatch.recovery import executions, steps, waits
from dcwatch.recovery import request as recovery
from dcwatch.recovery.state import Gate, WorkflowState, utcnow
from dcwatch.wiring import SITE_STEPS_FUNCTION, STEPS_FUNCTION
from dcwatch.wiring import step as step_spec

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from dcwatch.ports import Inventory

Step = Callable[[WorkflowState, runtime.App], WorkflowState]


def _run(step: str, event: dict[str, Any], action: Step, context: LambdaContext | None = None) -> dict[str, Any]:
    state = WorkflowState.model_validate(event["state"])
    logger.append_keys(incident_id=state.incident_id, step=step)
    app = runtime.app()
    if context is not None:
        app.once.register(context)
    begun, known = utcnow(), len(state.timeline)
    state = action(state, app)
    state.stamp_started(begun, since=known)
    logger.info("step done", detail=state.timeline[-1].detail if state.timeline else "")
    return state.dump()


def validate_request(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`{"request": <the execution input>, "execution": <its name>}`: the name owns the lock from here on."""
    begun = utcnow()
    app = runtime.app()
    execution = str(event["execution"])
    origin = recovery.Origin(execution, app.store, app.leases)
    try:
        state = steps.validate_request(
            event["request"],
            app.config,
            active_site=app.store.active_site(app.config.active_site),
            site_status=app.store.site_status,
            origin=origin,
        )
    except InvalidRequest as exc:
        # The evaluator or the CLI took the lock for this execution before starting it: give it back.
        released = app.leases.release(execution)
        logger.warning(
            "request refused", execution=execution, reason=str(exc), request=event["request"], lock_released=released
        )
        raise
    state.stamp_started(begun)
    logger.info("request accepted", incident_id=state.incident_id, plan=state.plan.model_dump(by_alias=True))
    return state.dump()


def request_failed(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`{"request", "execution", "error"}`: ValidateRequest failed otherwise than on a bad request."""
    execution, error = str(event["execution"]), dict(event.get("error") or {})
    logger.append_keys(execution=execution, step="RequestFailed")
    app = runtime.app()
    app.once.register(context)
    message_id = executions.request_failed(
        event.get("request"), execution, error, app.leases, app.store, app.notifier, app.once
    )
    logger.warning("request could not be checked: lock released, audited, announced", error=error.get("Error"))
    return {"messageId": message_id, "execution": execution}


SiteStep = Callable[[WorkflowState, "Inventory", runtime.App], WorkflowState]


def _renewed(state: WorkflowState, app: runtime.App) -> WorkflowState:
    """The lock extended first, by the step that starts the next long stretch (a group, the DNS switch, a
    shutdown): a lost lock stops it before it touches anything."""
    return steps.renew_lease(state, app.leases, app.config.workflow.lease_s)


def _wait_until(app: runtime.App, context: LambdaContext | None) -> datetime:
    """Until when CheckGroup and CheckDns wait inside: `workflow.step_wait_s`, within their Lambda's timeout."""
    remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    return waits.step_deadline(utcnow(), app.config.workflow.step_wait_s, remaining_s, STEP_OWN_WORK_S)


def _at_site(
    site_of: Callable[[WorkflowState], str],
    step: str,
    event: dict[str, Any],
    action: SiteStep,
    context: LambdaContext | None = None,
) -> dict[str, Any]:
    """A step that works on one site's vCenter, in one session that ends with the step."""

    def act(state: WorkflowState, app: runtime.App) -> WorkflowState:
        with app.inventory(site_of(state)) as inventory:
            return action(state, inventory, app)

    return _run(step, event, act, context)


def _at_standby(
    step: str, event: dict[str, Any], action: SiteStep, context: LambdaContext | None = None
) -> dict[str, Any]:
    return _at_site(lambda s: s.plan.to, step, event, action, context)


def _at_leaving_site(
    step: str, event: dict[str, Any], action: SiteStep, context: LambdaContext | None = None
) -> dict[str, Any]:
    """The site a migration or failback leaves."""
    return _at_site(lambda s: s.plan.from_site, step, event, action, context)


def acquire_lease(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    def acquire(state: WorkflowState, app: runtime.App) -> WorkflowState:
        active = partial(app.store.active_site, app.config.active_site)
        return steps.acquire_lease(state, app.leases, app.config.workflow.lease_s, active_site=active)

    return _run("AcquireLease", event, acquire)


def release_lease(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("ReleaseLease", event, lambda s, app: steps.release_lease(s, app.leases))


def fence(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run(
        "Fence",
        event,
        lambda s, app: steps.fence(s, lambda: app.inventory(s.plan.from_site), wait_until=_wait_until(app, context)),
        context,
    )


def prove_fenced(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run(
        "ProveFenced",
        event,
        lambda s, app: steps.prove_fenced(s, app.config, app.site_leases, app.store, app.probe),
    )


def check_standby(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_standby(
        "CheckStandby",
        event,
        lambda s, inventory, app: steps.check_standby(s, inventory, fencing=app.config.fencing, leases=app.site_leases),
    )


def check_storage(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("CheckStorage", event, lambda s, app: steps.check_storage(s, app.config, app.probe))


def check_mirror_synced(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("CheckMirrorSynced", event, lambda s, app: steps.check_mirror_synced(s, app.config, app.probe))


def start_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_standby(
        "StartGroup",
        event,
        lambda s, inventory, app: steps.start_group(_renewed(s, app), inventory, hooks=app.hooks, once=app.once),
        context,
    )


def check_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_standby(
        "CheckGroup",
        event,
        lambda s, inventory, app: steps.check_group(
            s,
            inventory,
            config=app.config,
            probe=app.probe,
            hooks=app.hooks,
            once=app.once,
            wait_until=_wait_until(app, context),
        ),
        context,
    )


def verify_services(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("VerifyServices", event, lambda s, app: steps.verify_services(s, app.config, app.probe))


def switch_dns(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run(
        "SwitchDns",
        event,
        lambda s, app: steps.switch_dns(_renewed(s, app), app.dns, app.config.workflow.dns_timeout_s, once=app.once),
        context,
    )


def check_dns(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("CheckDns", event, lambda s, app: steps.check_dns(s, app.dns, wait_until=_wait_until(app, context)))


def lower_ttl(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Migration, failback: the request's `lowerTtlSeconds` (the ASL enters this step only when it is set)."""
    return _run(
        "LowerTtl",
        event,
        lambda s, app: steps.lower_ttl(s, app.dns, s.request.lower_ttl_s or 60, once=app.once),
        context,
    )


def notify(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("Notify", event, lambda s, app: steps.notify(s, app.notifier, once=app.once), context)


def record_audit(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    output = _run("RecordAudit", event, lambda s, app: steps.record_audit(s, app.store, once=app.once), context)
    if output.get("notifyError"):
        step = "NotifyFailure" if output.get("failedStep") else "Notify"
        record_notify_failed(step)
        logger.error(
            "notification failed after its retries; the outcome is recorded", notify_error=output["notifyError"]
        )
    return output


def notify_failure(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run(
        "NotifyFailure",
        event,
        lambda s, app: steps.notify_failure(s, app.notifier, app.store, once=app.once),
        context,
    )


def shutdown_group(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_leaving_site(
        "ShutdownGroup",
        event,
        lambda s, inventory, app: steps.shutdown_group(
            _renewed(s, app), inventory, app.config.workflow.shutdown_timeout_s
        ),
    )


def check_shutdown(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_leaving_site(
        "CheckShutdown",
        event,
        lambda s, inventory, app: steps.check_shutdown(s, inventory, app.config.workflow.shutdown_timeout_s),
    )


def prepare_drill(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _at_standby("PrepareDrill", event, lambda s, inventory, app: steps.prepare_drill(s, inventory, app.dns))


def clean_up_drill(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Whatever became of the lock: a lost one is reported, and only the VMs wait when another recovery holds it.
    return _at_standby(
        "CleanUpDrill",
        event,
        lambda s, inventory, app: steps.clean_up_drill_whatever_the_lock(
            s, inventory, app.dns, app.leases, app.config.workflow.lease_s
        ),
    )


def request_approval(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Invoked with `.waitForTaskToken`: sends the token to the operators; the workflow waits for their answer.

    `gate`: `plan` (the modes the config asks approval for) or `fencing` (the failed site is not proven fenced).
    """
    state = WorkflowState.model_validate(event["state"])
    gate: Gate = "fencing" if event.get("gate") == "fencing" else "plan"
    logger.append_keys(incident_id=state.incident_id, step="RequestApproval", gate=gate)
    app = runtime.app()
    app.once.register(context)
    message_id = steps.request_approval(state, str(event["taskToken"]), app.notifier, once=app.once, gate=gate)
    logger.info("approval requested", message_id=message_id)
    return {"messageId": message_id}


def approved(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return _run("Approved", event, lambda s, app: steps.approved(s, app.leases, app.config.workflow.lease_s))


StepHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]
# Step name (the Task's "step", a key of dcwatch.wiring.STEPS) -> what runs it.
STEPS: dict[str, StepHandler] = {
    "ValidateRequest": validate_request,
    "RequestFailed": request_failed,
    "RequestApproval": request_approval,
    "Approved": approved,
    "LowerTtl": lower_ttl,
    "ShutdownGroup": shutdown_group,
    "CheckShutdown": check_shutdown,
    "CheckMirrorSynced": check_mirror_synced,
    "PrepareDrill": prepare_drill,
    "CleanUpDrill": clean_up_drill,
    "AcquireLease": acquire_lease,
    "CheckStandby": check_standby,
    "CheckStorage": check_storage,
    "Fence": fence,
    "ProveFenced": prove_fenced,
    "StartGroup": start_group,
    "CheckGroup": check_group,
    "VerifyServices": verify_services,
    "SwitchDns": switch_dns,
    "CheckDns": check_dns,
    "Notify": notify,
    "RecordAudit": record_audit,
    "NotifyFailure": notify_failure,
    "ReleaseLease": release_lease,
}


class WrongFunction(Exception):
    """A Task sent a step to the function that does not run it (its network and grants would be wrong)."""


def _dispatch(function: str, event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    name = str(event.get("step", ""))
    spec = step_spec(name)  # KeyError: a step the workflow does not have
    if spec.function != function:
        raise WrongFunction(f"{name} runs in {spec.function}, not in {function}")
    return STEPS[name](event, context)


# Provisioned concurrency (`-c warm_steps=N`) initializes ahead of need: load everything while nobody waits.
if os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") == "provisioned-concurrency":
    runtime.import_adapters()
    if tracing_on():
        tracer.tracer()


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def run_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The steps that need no site: request, lock, approval, DNS, notices, audit."""
    return _dispatch(STEPS_FUNCTION, event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def run_site_step(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The steps that reach a site: vCenter, storage, hooks, service checks."""
    return _dispatch(SITE_STEPS_FUNCTION, event, context)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def execution_ended(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The aws.states event of an execution Step Functions stopped (ABORTED) or timed out (TIMED_OUT)."""
    change = executions.ExecutionStatusChange.model_validate(event["detail"])
    logger.append_keys(incident_id=change.incident_id, execution=change.name, status=change.status)
    app = runtime.app()
    app.once.register(context)
    message_id = executions.execution_ended(change, app.leases, app.store, app.notifier, app.once, app.config)
    logger.info("ended execution audited and announced", message_id=message_id)
    return {"messageId": message_id, "incidentId": change.incident_id}
