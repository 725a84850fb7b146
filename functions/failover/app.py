"""Failover workflow steps in two functions: `run_step` runs those that need no site, `run_site_step` (inside
the VPC when there is one) those that reach a site. Each Task state names its step (`"step"` in its Parameters,
`dcwatch.wiring.STEPS` says which function runs it); each step is parse -> one core step -> state out.

One function per step made a failover pay a cold start per step; two pay two. The adapters a step uses
are imported when it first uses them (`dcwatch.runtime`), so pyVmomi loads only for the vCenter steps,
aiohttp only for the probing and hook steps, the X-Ray SDK only when tracing is on.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from dcwatch import runtime
from dcwatch.config import STEP_OWN_WORK_S
from dcwatch.errors import InvalidRequest
from dcwatch.observability import logger, record_notify_failed, tracer, tracing_on
from dcwatch.recovery import executions, scheduled, steps, waits
from dcwatch.recovery import request as recovery
from dcwatch.recovery.state import Gate, WorkflowState, utcnow
from dcwatch.wiring import SITE_STEPS_FUNCTION, STEPS_FUNCTION
from dcwatch.wiring import step as step_spec

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from dcwatch.ports import Inventory

StepHandler = Callable[[dict[str, Any], "LambdaContext"], dict[str, Any]]
# Step name (the Task's "step", a key of dcwatch.wiring.STEPS) -> what runs it; filled by the decorators below.
STEPS: dict[str, StepHandler] = {}

Action = Callable[[WorkflowState, runtime.App, "LambdaContext"], WorkflowState]
SiteAction = Callable[[WorkflowState, runtime.App, "LambdaContext", "Inventory"], WorkflowState]
Handler = TypeVar("Handler", bound=StepHandler)


def handles(name: str) -> Callable[[Handler], Handler]:
    """Registers a handler that takes the Task's event itself (the request steps, the approval's token)."""

    def register(handler: Handler) -> Handler:
        STEPS[name] = handler
        return handler

    return register


def step(name: str, *, once: bool = False) -> Callable[[Action], StepHandler]:
    """A step on the workflow state, with the wiring every such step repeats: state parsed, the log keyed by
    incident and step, the time the step began stamped on what it added to the timeline, the state dumped for
    the next Task. `once`: it acts once per run (`app.once`), which learns the invocation's deadline first.

    The handler's `app_parts` name the App parts this wiring builds (`bench.imports` counts a step's cold start
    from them and from the names in the step's own code)."""

    def register(action: Action) -> StepHandler:
        @functools.wraps(action)
        def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            state = WorkflowState.model_validate(event["state"])
            logger.append_keys(incident_id=state.incident_id, step=name)
            app = runtime.app()
            if once:
                app.once.register(context)
            begun, known = utcnow(), len(state.timeline)
            state = action(state, app, context)
            state.stamp_started(begun, since=known)
            logger.info("step done", detail=state.timeline[-1].detail if state.timeline else "")
            return state.dump()

        handler.app_parts = frozenset({"once"} if once else ())  # type: ignore[attr-defined]
        STEPS[name] = handler
        return handler

    return register


def site_step(
    name: str, site_of: Callable[[WorkflowState], str], *, once: bool = False
) -> Callable[[SiteAction], StepHandler]:
    """A `step` that works on one site's vCenter, in one session that ends with the step."""

    def register(action: SiteAction) -> StepHandler:
        def at_site(state: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
            with app.inventory(site_of(state)) as inventory:
                return action(state, app, context, inventory)

        handler = step(name, once=once)(functools.wraps(action)(at_site))
        handler.app_parts = handler.app_parts | {"inventory"}  # type: ignore[attr-defined]
        return handler

    return register


def _standby(state: WorkflowState) -> str:
    return state.plan.to


def _leaving_site(state: WorkflowState) -> str:
    """The site a migration or failback leaves (and a disaster's failed site)."""
    return state.plan.from_site


@handles("ValidateRequest")
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
            hold_back=scheduled.HoldBack(app.config, app.store, app.store, app.leases),
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


@handles("RequestFailed")
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


@handles("DrillSkipped")
def drill_skipped(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """`{"request", "execution", "error"}`: ValidateRequest held a scheduled drill back (DrillHeldBack)."""
    execution, error = str(event["execution"]), dict(event.get("error") or {})
    logger.append_keys(execution=execution, step="DrillSkipped")
    app = runtime.app()
    app.once.register(context)
    cause = str(error.get("Cause", ""))
    message_id = scheduled.drill_skipped(
        event.get("request"), execution, cause, utcnow(), app.store, app.notifier, app.once
    )
    logger.info("scheduled drill skipped: audited, announced", cause=cause)
    return {"messageId": message_id, "execution": execution}


def _renewed(state: WorkflowState, app: runtime.App) -> WorkflowState:
    """The lock extended first, by the step that starts the next long stretch (a group, the DNS switch, a
    shutdown): a lost lock stops it before it touches anything."""
    return steps.renew_lease(state, app.leases, app.config.workflow.lease_s)


def _wait_until(app: runtime.App, context: LambdaContext | None) -> datetime:
    """Until when CheckGroup, CheckDns and CheckClones wait inside: `workflow.step_wait_s`, within their Lambda's
    timeout."""
    remaining_s = context.get_remaining_time_in_millis() / 1000 if context is not None else None
    return waits.step_deadline(utcnow(), app.config.workflow.step_wait_s, remaining_s, STEP_OWN_WORK_S)


@step("AcquireLease")
def acquire_lease(state: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    active = partial(app.store.active_site, app.config.active_site)
    return steps.acquire_lease(state, app.leases, app.config.workflow.lease_s, active_site=active)


@step("ReleaseLease")
def release_lease(state: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.release_lease(state, app.leases)


@step("Fence")
def fence(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.fence(s, lambda: app.inventory(s.plan.from_site), wait_until=_wait_until(app, context))


@step("ProveFenced")
def prove_fenced(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.prove_fenced(s, app.config, app.site_leases, app.store, app.probe)


@site_step("CheckStandby", _standby)
def check_standby(s: WorkflowState, app: runtime.App, context: LambdaContext, inventory: Inventory) -> WorkflowState:
    return steps.check_standby(s, inventory, fencing=app.config.fencing, leases=app.site_leases)


@step("CheckStorage")
def check_storage(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.check_storage(s, app.config, app.probe)


@step("CheckMirrorSynced")
def check_mirror_synced(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.check_mirror_synced(s, app.config, app.probe)


@site_step("StartGroup", _standby, once=True)
def start_group(s: WorkflowState, app: runtime.App, context: LambdaContext, inventory: Inventory) -> WorkflowState:
    return steps.start_group(_renewed(s, app), inventory, hooks=app.hooks, once=app.once)


@site_step("CheckGroup", _standby, once=True)
def check_group(s: WorkflowState, app: runtime.App, context: LambdaContext, inventory: Inventory) -> WorkflowState:
    return steps.check_group(
        s,
        inventory,
        config=app.config,
        probe=app.probe,
        hooks=app.hooks,
        once=app.once,
        wait_until=_wait_until(app, context),
    )


@step("VerifyServices")
def verify_services(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.verify_services(s, app.config, app.probe)


@step("SwitchDns", once=True)
def switch_dns(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.switch_dns(_renewed(s, app), app.dns, app.config.workflow.dns_timeout_s, once=app.once)


@step("CheckDns")
def check_dns(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.check_dns(s, app.dns, wait_until=_wait_until(app, context))


@step("LowerTtl", once=True)
def lower_ttl(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    """Migration, failback: the request's `lowerTtlSeconds` (the ASL enters this step only when it is set)."""
    return steps.lower_ttl(s, app.dns, s.request.lower_ttl_s or 60, once=app.once)


@step("Notify", once=True)
def notify(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.notify(s, app.notifier, once=app.once)


def report_page(app: runtime.App) -> Callable[[dict[str, Any]], str]:
    """The run's report page from its audit record, against the config's RTO target; the renderer is imported
    when a report is due (in the stack: its bucket set)."""

    def render(record: dict[str, Any]) -> str:
        from dcwatch.reports import render_report

        return render_report(record, app.config.workflow.rto_target_s)

    return render


@step("RecordAudit", once=True)  # registered, then replaced by `record_audit` below, which wraps it
def _record_audit(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.record_audit(s, app.store, once=app.once, reports=app.reports, render=report_page(app))


@handles("RecordAudit")
def record_audit(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The audit record, and a notification that failed after its retries counted and logged."""
    output = _record_audit(event, context)
    if output.get("notifyError"):
        failed_step = "NotifyFailure" if output.get("failedStep") else "Notify"
        record_notify_failed(failed_step)
        logger.error(
            "notification failed after its retries; the outcome is recorded", notify_error=output["notifyError"]
        )
    return output


@step("NotifyFailure", once=True)
def notify_failure(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.notify_failure(s, app.notifier, app.store, once=app.once, reports=app.reports, render=report_page(app))


@site_step("ShutdownGroup", _leaving_site)
def shutdown_group(s: WorkflowState, app: runtime.App, context: LambdaContext, inventory: Inventory) -> WorkflowState:
    return steps.shutdown_group(_renewed(s, app), inventory, app.config.workflow.shutdown_timeout_s)


@site_step("CheckShutdown", _leaving_site)
def check_shutdown(s: WorkflowState, app: runtime.App, context: LambdaContext, inventory: Inventory) -> WorkflowState:
    return steps.check_shutdown(s, inventory, app.config.workflow.shutdown_timeout_s)


@step("PrepareDrill", once=True)
def prepare_drill(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    with app.drill_lab(_standby(s)) as lab:
        return steps.prepare_drill(s, lab, app.dns, hooks=app.hooks, once=app.once)


@step("CheckClones")
def check_clones(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    with app.drill_lab(_standby(s)) as lab:
        return steps.check_clones(s, lab, wait_until=_wait_until(app, context))


@step("CleanUpDrill", once=True)
def clean_up_drill(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    # Whatever became of the lock: a lost one is reported; the clones are the drill's own and go in any case.
    with app.drill_lab(_standby(s)) as lab:
        lease_s = app.config.workflow.lease_s
        return steps.clean_up_drill_whatever_the_lock(
            s, lab, app.dns, app.leases, lease_s, hooks=app.hooks, once=app.once
        )


@handles("RequestApproval")
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


@step("Approved")
def approved(s: WorkflowState, app: runtime.App, context: LambdaContext) -> WorkflowState:
    return steps.approved(s, app.leases, app.config.workflow.lease_s)


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
