"""Least privilege: each function may do its job and nothing else, stated here independently of the stack."""

from __future__ import annotations

import json

import pytest

from dcwatch.wiring import FUNCTIONS, failover_task_functions
from tests.infrastructure.conftest import ZONE_ID
from tests.infrastructure.deployed import NETWORK_INTERFACE_ACTIONS
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import (
    actions,
    function_role,
    function_statements,
    refs,
    resources,
    role_statements,
    services,
    statements_with,
)

pytestmark = pytest.mark.infrastructure

# What each function may touch, by service, besides writing its own log group and sending traces to X-Ray.
# Stated here, independently of the stack's own tables, so that a grant added or lost shows up as a failure.
ALLOWED_SERVICES = {
    "Probe": {"events", "secretsmanager"},
    "Evaluate": {"events", "dynamodb", "states", "sns", "kms"},
    "Control": {"dynamodb", "states"},
    "ValidateRequest": {"dynamodb"},
    "RequestApproval": {"sns", "kms", "dynamodb"},
    "Approved": {"dynamodb"},
    "LowerTtl": {"route53", "dynamodb"},
    "ShutdownGroup": {"secretsmanager"},
    "CheckMirrorSynced": set(),
    "CheckShutdown": {"secretsmanager"},
    "PrepareDrill": {"secretsmanager", "route53"},
    "CleanUpDrill": {"secretsmanager", "route53", "dynamodb"},
    "AcquireLease": {"dynamodb"},
    "RenewLease": {"dynamodb"},
    "ReleaseLease": {"dynamodb"},
    "CheckStandby": {"secretsmanager"},
    "CheckStorage": set(),
    "Fence": {"secretsmanager"},
    "StartGroup": {"secretsmanager", "dynamodb"},
    "CheckGroup": {"secretsmanager", "dynamodb"},
    "VerifyServices": set(),
    "SwitchDns": {"route53", "dynamodb"},
    "CheckDns": {"route53"},
    "Notify": {"sns", "kms", "dynamodb"},
    "RecordAudit": {"dynamodb"},
    "NotifyFailure": {"dynamodb", "sns", "kms"},
    "ExecutionEnded": {"dynamodb", "sns", "kms"},
}
STEP_KEYS = [spec.key for spec in failover_task_functions()]


def writers(synth: Synth, table_key: str, action: str = "dynamodb:PutItem") -> set[str]:
    table_id = synth.logical_id(synth.stack.tables[table_key])
    return {
        spec.key
        for spec in FUNCTIONS
        if any(table_id in refs(s["Resource"]) for s in statements_with(function_statements(synth, spec.key), action))
    }


def test_each_function_may_touch_only_the_services_of_its_job(demo: Synth):
    assert set(ALLOWED_SERVICES) == {spec.key for spec in FUNCTIONS}, "decide what a new function may touch"
    for key, allowed in ALLOWED_SERVICES.items():
        # Inside the VPC a function also manages its network interfaces (test_topology says which may).
        job = [s for s in function_statements(demo, key) if set(actions(s)) != NETWORK_INTERFACE_ACTIONS]
        assert services(job) - {"xray", "logs"} == allowed, key


def test_a_function_writes_only_its_own_log_group_and_has_no_managed_policy(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    roles = resources(demo, "AWS::IAM::Role")
    for spec in FUNCTIONS:
        function = functions[demo.function_id(spec.key)]["Properties"]
        [log_writes] = [s for s in function_statements(demo, spec.key) if services([s]) == {"logs"}]
        assert set(actions(log_writes)) == {"logs:CreateLogStream", "logs:PutLogEvents"}
        assert refs(log_writes["Resource"]) == {function["LoggingConfig"]["LogGroup"]["Ref"]}, spec.key
        role = roles[function_role(demo, demo.function_id(spec.key))]["Properties"]
        assert "ManagedPolicyArns" not in role, f"{spec.key}: no AWSLambdaBasicExecutionRole (logs:* on every group)"


def test_only_evaluate_starts_a_failover_and_only_this_workflow(demo: Synth):
    machine_id = demo.logical_id(demo.stack.state_machine)
    start = statements_with(function_statements(demo, "Evaluate"), "states:StartExecution")
    assert [s["Resource"] for s in start] == [{"Ref": machine_id}]
    for spec in FUNCTIONS:
        if spec.key != "Evaluate":
            assert not statements_with(function_statements(demo, spec.key), "states:StartExecution"), spec.key


def test_only_the_control_function_answers_an_approval_gate_and_it_starts_nothing(demo: Synth):
    answer = statements_with(function_statements(demo, "Control"), "states:SendTaskSuccess")
    assert [actions(s) for s in answer] == [["states:SendTaskSuccess"]], "no SendTaskFailure: deny is an answer too"
    for spec in FUNCTIONS:
        if spec.key != "Control":
            assert not statements_with(function_statements(demo, spec.key), "states:SendTaskSuccess"), spec.key
    states = {a for s in function_statements(demo, "Control") for a in actions(s) if a.startswith("states:")}
    assert states == {"states:SendTaskSuccess"}


def test_state_is_written_only_by_evaluate_the_audit_step_and_the_operators_control(demo: Synth):
    assert writers(demo, "State") == {"Evaluate", "RecordAudit", "Control"}


def test_the_audit_trail_is_append_only_for_the_functions_that_write_it(demo: Synth):
    table_id = demo.logical_id(demo.stack.tables["Audit"])
    granted = {
        spec.key: {
            a for s in function_statements(demo, spec.key) if table_id in refs(s["Resource"]) for a in actions(s)
        }
        for spec in FUNCTIONS
    }
    assert {key: acts for key, acts in granted.items() if acts} == {
        "RecordAudit": {"dynamodb:PutItem"},
        "NotifyFailure": {"dynamodb:PutItem"},
        "Control": {"dynamodb:PutItem"},
        "ExecutionEnded": {"dynamodb:PutItem"},
    }


def test_the_lock_is_taken_renewed_and_released_only_by_the_evaluator_and_the_lease_steps(demo: Synth):
    # ValidateRequest may only give back the lock taken for its own execution when it rejects the request;
    # ExecutionEnded only the lock of an execution Step Functions stopped or timed out.
    table_id = demo.logical_id(demo.stack.tables["Locks"])
    granted = {
        spec.key: {
            a for s in function_statements(demo, spec.key) if table_id in refs(s["Resource"]) for a in actions(s)
        }
        for spec in FUNCTIONS
    }
    lease = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert {key: acts for key, acts in granted.items() if acts} == {
        "Evaluate": lease,
        "AcquireLease": lease,
        "RenewLease": lease,
        "ReleaseLease": lease,
        "Approved": lease,
        "CleanUpDrill": lease,
        "ValidateRequest": {"dynamodb:DeleteItem"},
        # A stopped or timed-out execution's own lock (conditional delete), its holder named otherwise (get).
        "ExecutionEnded": {"dynamodb:DeleteItem", "dynamodb:GetItem"},
    }


def test_vcenter_secrets_are_referenced_by_name_never_created_and_read_only_where_needed(demo: Synth):
    demo.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    for spec in FUNCTIONS:
        granted = [
            str(s["Resource"])
            for s in statements_with(function_statements(demo, spec.key), "secretsmanager:GetSecretValue")
        ]
        for site in demo.config.sites:
            readable = any(f"secret:{site.vcenter.credentials_secret}-??????" in r for r in granted)
            users = ("Probe", "CheckStandby", "Fence", "StartGroup", "CheckGroup", "ShutdownGroup", "CheckShutdown")
            assert readable == (spec.key in (*users, "PrepareDrill", "CleanUpDrill")), spec.key
    assert "SecretString" not in json.dumps(demo.template.to_json()), "no secret value in the template"


def test_without_zone_ids_dns_changes_may_touch_any_hosted_zone_and_follow_any_change(demo: Synth):
    switch = function_statements(demo, "SwitchDns")
    [change] = statements_with(switch, "route53:ChangeResourceRecordSets")
    assert change["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":route53:::hostedzone/*"]]}
    [lookup] = statements_with(switch, "route53:ListHostedZonesByName")
    assert lookup["Resource"] == "*" and actions(lookup) == ["route53:ListHostedZonesByName"]
    [follow] = statements_with(function_statements(demo, "CheckDns"), "route53:GetChange")
    assert "change/*" in str(follow["Resource"])


def test_with_zone_ids_dns_changes_are_scoped_to_exactly_the_configured_zones(prod: Synth):
    [change] = statements_with(function_statements(prod, "SwitchDns"), "route53:ChangeResourceRecordSets")
    assert change["Resource"] == {
        "Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":route53:::hostedzone/{ZONE_ID}"]]
    }


def test_workflow_role_invokes_exactly_its_steps(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    statements = role_statements(demo, machine["RoleArn"]["Fn::GetAtt"][0])
    [invoke] = statements_with(statements, "lambda:InvokeFunction")
    assert refs(invoke["Resource"]) == {demo.function_id(key) for key in STEP_KEYS}
    assert services(statements) == {"lambda", "logs", "xray"}


def test_a_drill_reads_and_restores_its_records_only_in_the_configured_zones(prod: Synth):
    zone = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":route53:::hostedzone/{ZONE_ID}"]]}
    for key in ("PrepareDrill", "CleanUpDrill"):
        [read] = statements_with(function_statements(prod, key), "route53:ListResourceRecordSets")
        assert read["Resource"] == zone, key
    [restore] = statements_with(function_statements(prod, "CleanUpDrill"), "route53:ChangeResourceRecordSets")
    assert restore["Resource"] == zone
    assert not statements_with(function_statements(prod, "PrepareDrill"), "route53:ChangeResourceRecordSets")


def test_the_ended_execution_handler_appends_audit_releases_its_lock_and_alerts_and_nothing_else(demo: Synth):
    statements = function_statements(demo, "ExecutionEnded")
    by_table = {
        key: {
            a for s in statements if demo.logical_id(demo.stack.tables[key]) in refs(s["Resource"]) for a in actions(s)
        }
        for key in ("State", "Audit", "Locks", "Idempotency")
    }
    idempotency = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert by_table == {
        "State": set(),
        "Audit": {"dynamodb:PutItem"},
        "Locks": {"dynamodb:DeleteItem", "dynamodb:GetItem"},
        "Idempotency": idempotency,
    }
    [publish] = statements_with(statements, "sns:Publish")
    assert refs(publish["Resource"]) == {demo.logical_id(demo.stack.topic)}
    kms = {a for s in statements for a in actions(s) if a.startswith("kms:")}
    assert kms == {"kms:Decrypt", "kms:GenerateDataKey*"}
