"""One source for functions, rules and the workflow: what CDK deploys is what runs locally."""

from __future__ import annotations

import json

import pytest

from dcwatch.local.lambdas import load_handler
from dcwatch.wiring import FAILOVER_ASL, FUNCTIONS, RULES, asl_variables, render_failover_definition

ASL = json.loads(FAILOVER_ASL.read_text())
TASKS = {name: state for name, state in ASL["States"].items() if state["Type"] == "Task"}


@pytest.mark.parametrize("spec", FUNCTIONS, ids=lambda s: s.key)
def test_every_function_names_a_handler_that_exists(spec):
    assert callable(load_handler(spec))


def test_every_rule_targets_a_known_function():
    assert {r.target for r in RULES} <= {f.key for f in FUNCTIONS}


def test_the_definition_renders_with_an_arn_for_every_task_and_refuses_a_missing_one():
    arns = {f.arn_variable: f"arn:aws:lambda:eu-central-1:1:function:{f.key}" for f in FUNCTIONS}
    rendered = json.loads(render_failover_definition(arns))
    assert rendered["States"]["SwitchDns"]["Resource"].endswith(":function:SwitchDns")
    missing = dict(arns)
    missing.pop("NotifyArn")
    with pytest.raises(KeyError, match="NotifyArn"):
        render_failover_definition(missing)


def function_of(state: dict) -> str:
    return state["Resource"].removeprefix("${").removesuffix("Arn}")


def test_each_task_is_named_after_its_function():
    assert set(asl_variables()) == {f"{function_of(state)}Arn" for state in TASKS.values()}
    for name, state in TASKS.items():
        assert name.startswith(function_of(state)), name


def test_every_task_retries_transient_errors():
    for name, state in TASKS.items():
        retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
        assert {"TransientError", "Lambda.ServiceException", "Lambda.TooManyRequestsException"} <= retried, name


def test_every_step_after_validation_is_caught_into_a_failure_notice_naming_itself():
    for name, state in TASKS.items():
        if name == "ValidateRequest":
            assert "Catch" not in state, f"{name} must fail the execution itself"
            continue
        if name == "NotifyFailure" or function_of(state) == "ReleaseLease":
            continue
        (catch,) = state["Catch"]
        assert catch["ErrorEquals"] == ["States.ALL"] and catch["ResultPath"] == "$.error"
        marker = ASL["States"][catch["Next"]]
        step = function_of(state)
        assert marker == {"Type": "Pass", "Result": step, "ResultPath": "$.failedStep", "Next": "NotifyFailure"}


def test_the_lock_is_released_at_the_end_of_every_path_success_or_failure():
    def leads_to(target: str) -> set[str]:
        return {
            name
            for name, state in ASL["States"].items()
            if target in {state.get("Next"), state.get("Default")} | {c["Next"] for c in state.get("Catch", [])}
        }

    assert leads_to("Done") == {"ReleaseLease"}
    assert leads_to("Failed") == {"ReleaseLeaseAfterFailure"}
    assert leads_to("ReleaseLeaseAfterFailure") == {"NotifyFailure"}, "even when the failure notice fails"
    assert TASKS["NotifyFailure"]["Catch"][0]["Next"] == "ReleaseLeaseAfterFailure"
    assert TASKS["ValidateRequest"]["Next"] == "AcquireLease", "nothing is touched before the lock is held"


def test_the_failed_site_is_fenced_before_anything_is_powered_on_at_the_standby():
    assert ASL["States"]["IsDryRun"]["Default"] == "Fence"
    assert TASKS["Fence"]["Next"] == "RenewLeaseForGroup" and TASKS["RenewLeaseForGroup"]["Next"] == "StartGroup"
    assert "FencingIncomplete" in {e for r in TASKS["Fence"]["Retry"] for e in r["ErrorEquals"]}


def test_a_bad_request_fails_the_first_state_without_a_catch():
    assert ASL["StartAt"] == "ValidateRequest"
    assert "InvalidRequest" not in {e for r in TASKS["ValidateRequest"]["Retry"] for e in r["ErrorEquals"]}


def test_every_wait_is_bounded_by_a_step_that_enforces_a_deadline():
    waits = {n: s for n, s in ASL["States"].items() if s["Type"] == "Wait"}
    assert {s["Next"] for s in waits.values()} == {"CheckGroup", "CheckDns"}
    assert ASL["TimeoutSeconds"] <= 3600
