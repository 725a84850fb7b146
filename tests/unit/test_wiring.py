"""One source for functions, rules and the workflow: what CDK deploys is what runs locally."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from dcwatch.config.hooks import DRILL_HOOK_STEPS, HOOK_STEPS
from dcwatch.config.workflow import (
    STEP_OWN_WORK_S,
    STEP_TIMEOUT_S,
    WORKFLOW_TIMEOUT_S,
    Workflow,
    longest_run,
    workflow_timeout_s,
)
from dcwatch.local.lambdas import LambdaContext, load_handler, load_module
from dcwatch.recovery.waits import step_deadline
from dcwatch.wiring import (
    FAILOVER_ASL,
    FUNCTIONS,
    RULES,
    STEPS,
    asl_variables,
    failover_definition,
    failover_task_functions,
    function,
    render_failover_definition,
)
from dcwatch.wiring import step as step_spec
from tests.helpers import demo_config

ASL = json.loads(FAILOVER_ASL.read_text())
TASKS = {name: state for name, state in ASL["States"].items() if state["Type"] == "Task"}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.key)
def test_every_function_names_a_handler_that_exists(spec):
    assert callable(load_handler(spec))


def test_every_rule_targets_a_known_function():
    assert {r.target for r in RULES} <= {f.key for f in FUNCTIONS}


def test_the_definition_renders_each_step_as_the_function_that_runs_it_and_refuses_a_missing_one():
    arns = {f.key: f"arn:aws:lambda:eu-central-1:1:function:{f.key}" for f in FUNCTIONS}
    rendered = json.loads(render_failover_definition(arns))
    assert rendered["States"]["SwitchDns"]["Resource"].endswith(":function:Steps")
    assert rendered["States"]["CheckGroup"]["Resource"].endswith(":function:SiteSteps")
    assert rendered["States"]["RequestApproval"]["Parameters"]["FunctionName"].endswith(":function:Steps")
    missing = dict(arns)
    missing.pop("SiteSteps")
    with pytest.raises(KeyError, match="SiteSteps"):
        render_failover_definition(missing)


def function_of(state: dict) -> str:
    """The step a Task runs, by its Resource (`${<step>Arn}`), or for a callback task its FunctionName."""
    resource = state.get("Parameters", {}).get("FunctionName", state["Resource"])
    return resource.removeprefix("${").removesuffix("Arn}")


def step_named(state: dict) -> str:
    """What the Task tells the dispatcher to run: `step` in its Parameters (a callback task's Payload)."""
    parameters = state["Parameters"]
    return str(parameters.get("Payload", parameters)["step"])


def test_each_task_is_named_after_its_step_and_tells_its_function_that_step():
    assert set(asl_variables()) == {f"{function_of(state)}Arn" for state in TASKS.values()}
    for name, state in TASKS.items():
        assert name.startswith(function_of(state)), name
        assert step_named(state) == function_of(state), name


def test_the_workflow_runs_in_two_functions_one_for_the_steps_that_reach_a_site():
    assert [f.key for f in failover_task_functions()] == ["Steps", "SiteSteps"]
    assert {s.function for s in STEPS if s.reaches_sites} == {"SiteSteps"}
    assert function("SiteSteps").reaches_sites and not function("Steps").reaches_sites
    assert {f"{s.key}Arn" for s in STEPS} == set(asl_variables()), "every step is a Task, every Task a step"


def test_the_failover_code_runs_every_step_and_refuses_one_sent_to_the_wrong_function():
    code = load_module("failover")
    assert set(code.STEPS) == {s.key for s in STEPS}
    context = LambdaContext("SiteSteps", "arn:aws:lambda:eu-central-1:1:function:SiteSteps", "r-1")
    # Refused before anything runs: SwitchDns in the VPC would lack its Route 53 grant.
    with pytest.raises(code.WrongFunction, match="SwitchDns runs in Steps, not in SiteSteps"):
        code.run_site_step({"step": "SwitchDns", "state": {}}, context)
    with pytest.raises(KeyError, match="no failover step 'Explode'"):
        code.run_step({"step": "Explode", "state": {}}, context)


def test_every_task_retries_transient_errors():
    for name, state in TASKS.items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert {"TransientError", "Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried, name
        assert "Lambda.Unknown" in retried, f"{name}: a Lambda killed by its timeout is retried too"


def test_every_task_retries_a_step_still_in_progress_elsewhere_past_that_invocations_deadline():
    for name, state in TASKS.items():
        (retrier,) = [r for r in state["Retry"] if "StepInProgress" in r["ErrorEquals"]]
        assert state["Retry"][0] is retrier, f"{name}: before the TransientError retrier, which would match first"
        delays = [retrier["IntervalSeconds"] * retrier["BackoffRate"] ** n for n in range(retrier["MaxAttempts"])]
        # No jitter here: the wait must be sure to outlast the Lambda timeout, when Powertools lets the record go.
        assert "JitterStrategy" not in retrier and sum(delays) > STEP_TIMEOUT_S, name


def test_every_transient_retrier_spreads_its_retries_with_full_jitter():
    for name, state in TASKS.items():
        for retrier in state["Retry"]:
            if "TransientError" in retrier["ErrorEquals"]:
                assert retrier["JitterStrategy"] == "FULL" and retrier["MaxDelaySeconds"] >= 1, name


def test_the_outcome_is_recorded_before_it_is_announced_and_a_failed_announcement_undoes_nothing():
    assert ASL["States"]["IsDrill"]["Default"] == "RecordAudit" and TASKS["RecordAudit"]["Next"] == "Notify"
    assert ASL["States"]["IsDryRun"]["Choices"][0]["Next"] == "RecordAudit", "a dry run is recorded too"
    assert TASKS["Notify"]["Next"] == "ReleaseLease"
    for notify, release in (("Notify", "ReleaseLease"), ("NotifyFailure", "ReleaseLeaseAfterFailure")):
        (catch,) = TASKS[notify]["Catch"]
        assert catch["ResultPath"] == "$.notifyError", notify
        record = TASKS[catch["Next"]]
        assert step_named(record) == "RecordAudit" and record["Next"] == release, notify
        assert [c["Next"] for c in record["Catch"]] == [release], f"{notify}: the lock is given back whatever happens"


def test_a_request_that_fails_to_be_checked_gives_back_its_lock_and_is_announced_a_bad_one_fails_as_itself():
    refused, held_back, failed = TASKS["ValidateRequest"]["Catch"]
    assert refused["ErrorEquals"] == ["InvalidRequest"] and failed["ErrorEquals"] == ["States.ALL"]
    assert held_back["ErrorEquals"] == ["DrillHeldBack"], "before States.ALL: a skipped drill is no failure"
    assert ASL["States"][refused["Next"]] | {"Comment": ""} == {
        "Type": "Fail",
        "Error": "InvalidRequest",
        "CausePath": "$.Cause",
        "Comment": "",
    }
    handler = TASKS[failed["Next"]]
    assert step_named(handler) == "RequestFailed"
    assert handler["Parameters"]["execution.$"] == "$$.Execution.Name", "the name that owns the lock"
    assert handler["Next"] == "Failed" and [c["Next"] for c in handler["Catch"]] == ["Failed"]


def test_a_held_back_scheduled_drill_is_recorded_as_skipped_and_ends_without_failing_unless_the_record_fails():
    (held_back,) = [c for c in TASKS["ValidateRequest"]["Catch"] if c["ErrorEquals"] == ["DrillHeldBack"]]
    # The lock taken between ValidateRequest's look and AcquireLease holds a scheduled drill back too.
    lock_taken, failed = TASKS["AcquireLease"]["Catch"]
    assert lock_taken == held_back and failed["ErrorEquals"] == ["States.ALL"]
    held_back_in = {n for n, t in TASKS.items() for c in t.get("Catch", []) if c["ErrorEquals"] == ["DrillHeldBack"]}
    assert held_back_in == {"ValidateRequest", "AcquireLease"}, "after the lock a drill is no longer skipped"
    skipped = TASKS[held_back["Next"]]
    assert step_named(skipped) == "DrillSkipped"
    assert skipped["Parameters"]["request.$"] == "$$.Execution.Input", "the schedule's own input is recorded"
    assert ASL["States"][skipped["Next"]]["Type"] == "Succeed"
    assert [c["Next"] for c in skipped["Catch"]] == ["Failed"], "an unrecorded skip shows as a failed execution"


def test_every_step_after_validation_is_caught_into_a_failure_notice_naming_itself():
    for name, state in TASKS.items():
        if name in ("ValidateRequest", "RequestFailed", "DrillSkipped", "Notify") or name.startswith(
            "RecordAuditNotifyError"
        ):
            continue  # above
        if name == "NotifyFailure" or function_of(state) == "ReleaseLease":
            continue
        if name in ("CleanUpDrillAfterFailure", "Fence"):
            continue  # Fence: whatever stops it, the other proofs are sought (below)
        catches = state["Catch"][1:] if name == "AcquireLease" else state["Catch"]  # [0]: a drill skipped (above)
        (catch,) = catches
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] == "$.error"
        marker = ASL["States"][catch["Next"]]
        step = function_of(state)
        assert marker == {"Type": "Pass", "Result": step, "ResultPath": "$.failedStep", "Next": marker["Next"]}
        assert marker["Next"] in ("NotifyFailure", "DrillFailed"), name


def successors(state: dict) -> set[str]:
    names = {state.get("Next"), state.get("Default")} | {c["Next"] for c in state.get("Choices", [])}
    return {n for n in names | {c["Next"] for c in state.get("Catch", [])} if n}


def reachable(start: str, stop: set[str] = frozenset()) -> set[str]:
    """Every state a path from `start` can reach without passing through `stop`."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name in stop:
            continue
        seen.add(name)
        todo += successors(ASL["States"][name])
    return seen


def test_a_drill_cleans_up_before_any_failure_is_announced_once_it_may_have_changed_something():
    drill_path = reachable("PrepareDrill", stop={"DrillFailed", "IsDrill"})
    for name in drill_path:
        for catch in ASL["States"][name].get("Catch", []):
            assert ASL["States"][catch["Next"]]["Next"] == "DrillFailed", name
    assert ASL["States"]["DrillFailed"]["Choices"][0]["Next"] == "CleanUpDrillAfterFailure"
    assert TASKS["CleanUpDrillAfterFailure"]["Next"] == "NotifyFailure"
    assert TASKS["CleanUpDrillAfterFailure"]["Catch"][0]["ResultPath"] == "$.cleanupError", "keeps the first error"
    assert (
        ASL["States"]["IsDrill"]["Choices"][0]["Next"] == "CleanUpDrill"
        and TASKS["CleanUpDrill"]["Next"] == "RecordAudit"
    )


def test_a_drill_never_reaches_the_steps_that_touch_the_leaving_site():
    drill_path = reachable("PrepareDrill")
    assert not drill_path & {"Fence", "ShutdownGroup", "CheckShutdown"}


def test_a_migration_asked_to_lower_the_ttl_does_so_before_anything_is_shut_down():
    (leaving,) = [c for c in ASL["States"]["ChooseMode"]["Choices"] if "Or" in c]
    choice = ASL["States"][leaving["Next"]]
    assert choice["Choices"] == [{"Variable": "$.request.lowerTtlSeconds", "IsNumeric": True, "Next": "LowerTtl"}]
    assert choice["Default"] == "ShutdownGroup"
    assert TASKS["LowerTtl"]["Next"] == "WaitForTtl"


def test_migration_and_failback_shut_the_leaving_site_down_instead_of_fencing_it():
    (leaving,) = [c for c in ASL["States"]["ChooseMode"]["Choices"] if "Or" in c]
    assert {v["StringEquals"] for v in leaving["Or"]} == {"migration", "failback"}
    path = reachable(leaving["Next"], stop={"StartGroup"})
    assert {"ShutdownGroup", "CheckShutdown"} <= path and "Fence" not in path
    # All off: the mirror must have caught up before anything at the standby is promoted or powered on.
    assert ASL["States"]["ShutdownDone"]["Choices"][1]["Next"] == "CheckMirrorSynced"
    assert TASKS["CheckMirrorSynced"]["Next"] == "StartGroup"


def test_nothing_changes_before_an_approval_when_one_is_needed():
    assert ASL["States"]["IsDryRun"]["Default"] == "NeedsApproval"
    assert ASL["States"]["NeedsApproval"]["Choices"][0]["Next"] == "RequestApproval"
    gate = TASKS["RequestApproval"]
    assert gate["Resource"].endswith(".waitForTaskToken") and gate["TimeoutSecondsPath"] == "$.approval.timeoutSeconds"
    assert gate["Next"] == "IsApproved" and TASKS["Approved"]["Next"] == "ChooseMode"
    assert ASL["States"]["IsApproved"]["Choices"][0]["Next"] == "Approved", "only an explicit approved: true"
    assert ASL["States"]["ApprovalDenied"]["Next"] == "NotifyFailure"


def test_the_lock_is_released_at_the_end_of_every_path_success_or_failure():
    def leads_to(target: str) -> set[str]:
        return {
            name
            for name, state in ASL["States"].items()
            if target in {state.get("Next"), state.get("Default")} | {c["Next"] for c in state.get("Catch", [])}
        }

    assert leads_to("Done") == {"ReleaseLease"}
    # RequestFailed gives back the lock of its own execution itself: no state before it holds one.
    # DrillSkipped: a held-back drill never took it.
    assert leads_to("Failed") == {"ReleaseLeaseAfterFailure", "RequestFailed", "DrillSkipped"}
    assert leads_to("ReleaseLeaseAfterFailure") == {"NotifyFailure", "RecordAuditNotifyErrorAfterFailure"}, (
        "even when the failure notice fails"
    )
    assert TASKS["ValidateRequest"]["Next"] == "AcquireLease", "nothing is touched before the lock is held"


def test_the_failed_site_is_fenced_before_anything_is_powered_on_at_the_standby():
    assert ASL["States"]["ChooseMode"]["Default"] == "Fence", "disaster is the default mode's path"
    assert TASKS["Fence"]["Next"] == "StartGroup"
    assert "FencingIncomplete" in {e for r in TASKS["Fence"]["Retry"] for e in r["ErrorEquals"]}
    # A fault once connected (TransientError) is retried first: its VMs may still run.
    assert "TransientError" in {e for r in TASKS["Fence"]["Retry"] for e in r["ErrorEquals"]}
    # No connection is not retried: the lease proof waits anyway.
    assert "VcenterUnreachable" not in {e for r in TASKS["Fence"]["Retry"] for e in r["ErrorEquals"]}


def test_a_fence_that_did_not_power_the_site_off_promotes_only_with_another_proof_or_a_humans_approval():
    # Whatever stopped the Fence step, its error is kept and the other proofs are sought
    assert TASKS["Fence"]["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.fenceError", "Next": "ProveFenced"}
    ]
    assert TASKS["ProveFenced"]["Next"] == "FenceProven"
    proven, waiting = ASL["States"]["FenceProven"]["Choices"]
    assert proven == {"Variable": "$.fenceProof.proven", "BooleanEquals": True, "Next": "StartGroup"}
    assert waiting["Next"] == "WaitForFenceProof" and ASL["States"]["WaitForFenceProof"]["Next"] == "ProveFenced"
    # Without a proof: the approval gate; only an explicit approved: true promotes, and who it was is recorded
    assert ASL["States"]["FenceProven"]["Default"] == "RequestApprovalForFencing"
    gate = TASKS["RequestApprovalForFencing"]
    assert gate["Resource"].endswith(".waitForTaskToken") and gate["Parameters"]["Payload"]["gate"] == "fencing"
    assert (gate["TimeoutSecondsPath"], gate["ResultPath"]) == (
        "$.fenceApproval.timeoutSeconds",
        "$.fenceApproval.decision",
    )
    (approved,) = ASL["States"]["IsFencingApproved"]["Choices"]
    assert approved["Next"] == "ApprovedWithoutFenceProof" and TASKS[approved["Next"]]["Next"] == "StartGroup"
    assert ASL["States"][ASL["States"]["IsFencingApproved"]["Default"]]["Next"] == "NotifyFailure"
    # The standby's power-on is entered from a fence that worked, a proof, an approval, or (other modes) their
    # own gates, and from the group before it: no way from the Fence passes by all three
    into_power_on = {name for name, state in ASL["States"].items() if "StartGroup" in successors(state)}
    assert into_power_on == {
        "Fence",
        "FenceProven",
        "ApprovedWithoutFenceProof",
        "CheckMirrorSynced",
        "ClonesReady",
        "GroupDone",
    }
    assert {"ProveFenced", "RequestApprovalForFencing"} <= reachable("Fence", stop={"StartGroup"})


def test_a_bad_request_fails_the_first_state_without_a_catch():
    assert ASL["StartAt"] == "ValidateRequest"
    assert "InvalidRequest" not in {e for r in TASKS["ValidateRequest"]["Retry"] for e in r["ErrorEquals"]}


def test_every_wait_is_bounded_by_a_step_that_enforces_a_deadline():
    waits = {n: s for n, s in ASL["States"].items() if s["Type"] == "Wait"}
    # The one wait that polls nothing waits out the old DNS TTL: ValidateRequest refuses one longer than the
    # lock (lease_s less 60 s), and the shutdown after it renews the lock first.
    ttl = waits.pop("WaitForTtl")
    assert (ttl["SecondsPath"], ttl["Next"]) == ("$.progress.ttlWaitSeconds", "ShutdownGroup")
    # ProveFenced bounds its wait by count (fencing.proof_waits) and the lock outlasts them (config validate).
    # CheckClones fails past drill.clone_timeout_s.
    loops = {"CheckGroup", "CheckDns", "CheckShutdown", "ProveFenced", "CheckClones"}
    assert {s["Next"] for s in waits.values()} == loops
    assert ASL["TimeoutSeconds"] <= 3600


def test_the_hook_budget_the_config_checks_is_the_timeout_every_step_lambda_gets():
    runners = {step.function for step in STEPS if step.key in (*HOOK_STEPS, *DRILL_HOOK_STEPS)}
    assert runners == {"SiteSteps"}
    assert all(spec.timeout_s == STEP_TIMEOUT_S for spec in failover_task_functions())


def test_a_group_and_the_dns_change_are_checked_at_once_and_the_loops_wait_only_between_step_waits():
    assert TASKS["StartGroup"]["Next"] == "CheckGroup" and TASKS["SwitchDns"]["Next"] == "CheckDns"
    group_pending, _ = ASL["States"]["GroupDone"]["Choices"]
    assert group_pending == {"Variable": "$.progress.groupReady", "BooleanEquals": False, "Next": "WaitForGroup"}
    assert ASL["States"]["WaitForGroup"]["Next"] == "CheckGroup"
    assert ASL["States"]["DnsInSync"]["Default"] == "WaitForDns" and ASL["States"]["WaitForDns"]["Next"] == "CheckDns"


def test_the_lock_is_renewed_by_the_steps_that_start_each_stretch_not_by_hops_of_their_own():
    assert not [name for name in ASL["States"] if "Lease" in name and name.startswith("Renew")]
    assert "RenewLease" not in {f.key for f in FUNCTIONS} | {s.key for s in STEPS}


@pytest.mark.parametrize("key", ["CheckGroup", "CheckDns"])
def test_a_step_that_waits_inside_stops_waiting_before_its_lambda_timeout_leaving_time_for_its_work(key):
    # The timeout of the function that runs the step (CheckGroup: SiteSteps, CheckDns: Steps).
    timeout_s = function(step_spec(key).function).timeout_s
    longest = timeout_s - STEP_OWN_WORK_S
    assert Workflow(step_wait_s=longest).step_wait_s == longest
    with pytest.raises(ValidationError, match="step_wait_s"):
        Workflow(step_wait_s=longest + 1)
    now = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    # Whatever the config asks, an invocation that started late waits only what its Lambda has left.
    for remaining_s in (timeout_s, 20.0, 5.0):
        until = step_deadline(now, longest, remaining_s, STEP_OWN_WORK_S)
        assert (until - now).total_seconds() == max(0.0, min(longest, remaining_s - STEP_OWN_WORK_S))


def test_the_workflows_time_limit_outlasts_the_longest_run_the_config_allows():
    assert ASL["TimeoutSeconds"] == WORKFLOW_TIMEOUT_S, "the floor, kept in one place with the file"
    # Defaults plus an approval: 3 groups of 600 s, shutdown 3 x 300 s, DNS 300 s, the TTL and the approval
    data = demo_config().model_dump()
    data["workflow"] |= {"group_timeout_s": 600, "shutdown_timeout_s": 300, "dns_timeout_s": 300, "lease_s": 1300}
    data["workflow"]["approval"] = {"modes": ["migration"], "timeout_s": 1200}
    config = type(demo_config()).model_validate(data)
    longest, why = longest_run(config)
    assert longest == 1200 + 60 + 3 * 300 + 3 * 600 + 300 > WORKFLOW_TIMEOUT_S
    assert "approval.timeout_s 1200" in why and "shutdown_timeout_s x 3 900" in why and "dns_timeout_s 300" in why
    limit = workflow_timeout_s(config)
    assert limit >= longest + 10 * STEP_TIMEOUT_S, "and the other steps' own work"
    staged = json.loads(failover_definition(limit))  # what CDK stages, `${XArn}` still in place
    assert staged["TimeoutSeconds"] == limit and staged["States"] == ASL["States"]
    assert json.loads(render_failover_definition({"Steps": "s", "SiteSteps": "ss"}, limit))["TimeoutSeconds"] == limit
    assert workflow_timeout_s(demo_config()) == WORKFLOW_TIMEOUT_S, "never lowered"
