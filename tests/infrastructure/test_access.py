"""Least privilege: each function may do its job and nothing else, stated here independently of the stack."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest

from dcwatch.wiring import FUNCTIONS, STEPS, failover_task_functions
from tests.infrastructure.conftest import ZONE_ID
from tests.infrastructure.deployed import NETWORK_INTERFACE_ACTIONS
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import (
    Grant,
    actions_of,
    allowed_on,
    function_grants,
    function_role,
    grants,
    refs,
    resources,
    resources_for,
    role_statements,
    services_of,
    statement_grants,
)

pytestmark = pytest.mark.infrastructure

# What each step of the workflow needs, by service; the function that runs it (Steps or SiteSteps) may touch
# what its steps need together. Stated here, independently of the stack's own tables, so that a grant added
# or lost shows up as a failure.
STEP_SERVICES = {
    # The state (active site; for a scheduled drill: the sites, automation, maintenance) and the lock's holder.
    "ValidateRequest": {"dynamodb"},
    # A request that could not be checked: its lock given back, the audit record, the alert.
    "RequestFailed": {"dynamodb", "sns", "kms"},
    # A scheduled drill held back: its audit record (once), the notice.
    "DrillSkipped": {"dynamodb", "sns", "kms"},
    "RequestApproval": {"sns", "kms", "dynamodb"},
    "Approved": {"dynamodb"},
    "LowerTtl": {"route53", "dynamodb"},
    "ShutdownGroup": {"secretsmanager", "dynamodb"},
    "CheckMirrorSynced": set(),
    "CheckShutdown": {"secretsmanager"},
    # The drill's: leftover clones, the records noted, the clones started once per run (idempotency).
    "PrepareDrill": {"secretsmanager", "route53", "dynamodb"},
    "CheckClones": {"secretsmanager"},
    "CleanUpDrill": {"secretsmanager", "route53", "dynamodb"},
    "AcquireLease": {"dynamodb"},
    "ReleaseLease": {"dynamodb"},
    "CheckStandby": {"secretsmanager"},
    "CheckStorage": set(),
    "Fence": {"secretsmanager"},
    # The site agents' leases and the standby agent's report (proof b); its storage is an HTTP check (proof c).
    "ProveFenced": {"dynamodb"},
    "StartGroup": {"secretsmanager", "dynamodb"},
    "CheckGroup": {"secretsmanager", "dynamodb"},
    "VerifyServices": set(),
    "SwitchDns": {"route53", "dynamodb"},
    "CheckDns": {"route53"},
    "Notify": {"sns", "kms", "dynamodb"},
    # s3: the run's report page (PutObject on the report bucket), success and failure alike.
    "RecordAudit": {"dynamodb", "s3"},
    "NotifyFailure": {"dynamodb", "sns", "kms", "s3"},
}
# What each function may touch, by service, besides writing its own log group and sending traces to X-Ray.
ALLOWED_SERVICES = {
    "Probe": {"events", "secretsmanager"},
    # sqs: the probe-rounds queue its event source mapping reads (receive, delete, attributes).
    "Evaluate": {"events", "dynamodb", "states", "sns", "kms", "sqs"},
    # Each site agent's latest report and its silence (state), their decision records (audit), their alerts.
    "AgentReports": {"dynamodb", "sns", "kms", "sqs"},  # sqs: what failed every retry, to its dead-letter queue
    "Control": {"dynamodb", "states"},
    "Steps": set().union(*(STEP_SERVICES[s.key] for s in STEPS if s.function == "Steps")),
    "SiteSteps": set().union(*(STEP_SERVICES[s.key] for s in STEPS if s.function == "SiteSteps")),
    "ExecutionEnded": {"dynamodb", "sns", "kms"},
}
STEP_KEYS = [spec.key for spec in failover_task_functions()]
# The production shape's stack knows its region, so its partition is a literal (CDK's enablePartitionLiterals).
PROD_ZONE = f"arn:aws:route53:::hostedzone/{ZONE_ID}"


def table_grants(synth: Synth, table_key: str) -> dict[str, set[str]]:
    """Function key -> the actions it may take on the table, for every function that may take any."""
    table_id = synth.logical_id(synth.stack.tables[table_key])
    granted = {spec.key: allowed_on(function_grants(synth, spec.key), table_id) for spec in FUNCTIONS}
    return {key: acts for key, acts in granted.items() if acts}


def test_each_function_may_touch_only_the_services_of_its_job(demo: Synth):
    assert set(ALLOWED_SERVICES) == {spec.key for spec in FUNCTIONS}, "decide what a new function may touch"
    assert set(STEP_SERVICES) == {s.key for s in STEPS}, "decide what a new step may touch"
    # The site steps' function is no DNS switch and no notifier; the other steps' never reads a vCenter secret.
    assert ALLOWED_SERVICES["SiteSteps"] == {"secretsmanager", "route53", "dynamodb"}
    assert ALLOWED_SERVICES["Steps"] == {"dynamodb", "route53", "sns", "kms", "s3"}, "s3: the reports"
    network_interfaces = {Grant(action, "*") for action in NETWORK_INTERFACE_ACTIONS}
    for key, allowed in ALLOWED_SERVICES.items():
        # Inside the VPC a function also manages its network interfaces (test_topology says which may).
        job = set(function_grants(demo, key)) - network_interfaces
        assert services_of(job) - {"xray", "logs"} == allowed, key


def test_a_function_writes_only_its_own_log_group_and_has_no_managed_policy(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    roles = resources(demo, "AWS::IAM::Role")
    for spec in FUNCTIONS:
        function = functions[demo.function_id(spec.key)]["Properties"]
        log_writes = [g for g in function_grants(demo, spec.key) if services_of([g]) == {"logs"}]
        assert actions_of(log_writes) == {"logs:CreateLogStream", "logs:PutLogEvents"}, spec.key
        assert {i for g in log_writes for i in refs(g.resource)} == {function["LoggingConfig"]["LogGroup"]["Ref"]}
        assert all(g.condition is None for g in log_writes), spec.key
        role = roles[function_role(demo, demo.function_id(spec.key))]["Properties"]
        assert "ManagedPolicyArns" not in role, f"{spec.key}: no AWSLambdaBasicExecutionRole (logs:* on every group)"


def test_only_evaluate_starts_a_failover_and_only_this_workflow(demo: Synth):
    machine_id = demo.logical_id(demo.stack.state_machine)
    assert resources_for(function_grants(demo, "Evaluate"), "states:StartExecution") == [{"Ref": machine_id}]
    for spec in FUNCTIONS:
        if spec.key != "Evaluate":
            assert not resources_for(function_grants(demo, spec.key), "states:StartExecution"), spec.key


def test_only_the_control_function_answers_an_approval_gate_and_it_starts_nothing(demo: Synth):
    states = {g for g in function_grants(demo, "Control") if g.action.startswith("states:")}
    # The task token names the one waiting task; no SendTaskFailure: deny is an answer too.
    assert states == {Grant("states:SendTaskSuccess", "*")}
    for spec in FUNCTIONS:
        if spec.key != "Control":
            assert not resources_for(function_grants(demo, spec.key), "states:SendTaskSuccess"), spec.key


def test_state_is_written_only_by_the_evaluator_the_audit_step_and_the_operators_control(demo: Synth):
    writers = {key for key, acts in table_grants(demo, "State").items() if "dynamodb:PutItem" in acts}
    assert writers == {"Evaluate", "AgentReports", "Steps", "Control"}  # Steps: RecordAudit


def test_the_audit_trail_is_append_only_for_the_functions_that_write_it(demo: Synth):
    assert table_grants(demo, "Audit") == {
        # The evaluator's decision records: every change it announces (a site DOWN, an agent silent, ...).
        "Evaluate": {"dynamodb:PutItem"},
        "AgentReports": {"dynamodb:PutItem"},
        "Steps": {"dynamodb:PutItem"},  # RecordAudit, NotifyFailure
        "Control": {"dynamodb:PutItem"},
        "ExecutionEnded": {"dynamodb:PutItem"},
    }


# What no principal may do to an audit record, whatever its grants: change it, delete it (also in a batch).
AUDIT_FORBIDDEN = {
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
}


def audit_denials(synth: Synth) -> list[dict[str, Any]]:
    """The Deny statements of the audit table's own resource policy."""
    table = resources(synth, "AWS::DynamoDB::Table")[synth.logical_id(synth.stack.tables["Audit"])]
    statements = table["Properties"]["ResourcePolicy"]["PolicyDocument"]["Statement"]
    return [st for st in statements if st["Effect"] == "Deny"]


def test_the_audit_tables_own_policy_denies_every_principal_changing_or_deleting_a_record(demo: Synth):
    [deny] = audit_denials(demo)
    assert deny["Principal"] == {"AWS": "*"}, "every role of the stack, the agents' and any other principal"
    assert set(deny["Action"]) == AUDIT_FORBIDDEN
    assert deny["Resource"] == "*", "the table the policy is attached to"
    assert "Condition" not in deny
    # Appending stays possible: PutItem is not denied, and the state table (updated with the audit) has no such policy.
    assert "dynamodb:PutItem" not in deny["Action"]
    state = resources(demo, "AWS::DynamoDB::Table")[demo.logical_id(demo.stack.tables["State"])]
    assert "ResourcePolicy" not in state["Properties"]


def audit_changers(synth: Synth) -> list[str]:
    """`role: actions` for every role of the stack allowed to change or delete an audit record (wildcards too)."""
    audit = synth.logical_id(synth.stack.tables["Audit"])
    found = []
    for role_id, statement in role_statements(synth):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        on_audit = statement["Resource"] == "*" or audit in refs(statement["Resource"])
        matching = {a for a in AUDIT_FORBIDDEN for pattern in actions if fnmatch.fnmatchcase(a, pattern)}
        if statement["Effect"] == "Allow" and on_audit and matching:
            found.append(f"{role_id}: {sorted(matching)}")
    return found


def test_no_role_of_the_stack_is_even_granted_a_change_or_delete_of_an_audit_record(demo: Synth):
    assert len(resources(demo, "AWS::IAM::Role")) > len(FUNCTIONS), "the functions', the workflow's, the scheduler's"
    assert audit_changers(demo) == []


def test_the_lock_is_taken_renewed_and_released_only_by_the_evaluator_and_the_steps_that_hold_it(demo: Synth):
    # Steps: AcquireLease, ReleaseLease, Approved, SwitchDns (renews it before the switch); ValidateRequest gives
    # back the lock taken for its own execution when it rejects the request. SiteSteps: StartGroup and
    # ShutdownGroup (each renews it before its group), CleanUpDrill (renews or releases a drill's lock whatever
    # became of it). ExecutionEnded: only the lock of an execution Step Functions stopped or timed out.
    lease = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert table_grants(demo, "Locks") == {
        "Evaluate": lease,
        "Steps": lease,
        "SiteSteps": lease,
        # A stopped or timed-out execution's own lock (conditional delete), its holder named otherwise (get).
        "ExecutionEnded": {"dynamodb:DeleteItem", "dynamodb:GetItem"},
    }


def test_the_lease_proof_reads_the_site_agents_leases_by_a_grant_of_its_own(demo: Synth):
    # ProveFenced's grant: read only, only the agents' items. SiteSteps also holds CleanUpDrill's lease actions,
    # so this no longer keeps the proof from the failover lock: the code does (SiteLeaseTable reads site-lease#).
    table_id = demo.logical_id(demo.stack.tables["Locks"])
    [read] = [g for g in function_grants(demo, "SiteSteps") if table_id in refs(g.resource) and g.condition]
    assert read.action == "dynamodb:GetItem"
    assert read.condition == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["site-lease#*"]}}


def test_vcenter_secrets_are_referenced_by_name_never_created_and_read_only_where_needed(demo: Synth):
    demo.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    for spec in FUNCTIONS:
        granted = [str(r) for r in resources_for(function_grants(demo, spec.key), "secretsmanager:GetSecretValue")]
        for site in demo.config.sites:
            readable = any(f"secret:{site.vcenter.credentials_secret}-??????" in r for r in granted)
            # SiteSteps: CheckStandby, Fence, StartGroup, CheckGroup, ShutdownGroup, CheckShutdown, the drill's.
            assert readable == (spec.key in ("Probe", "SiteSteps")), spec.key
    assert "SecretString" not in json.dumps(demo.template.to_json()), "no secret value in the template"


def record_changes(synth: Synth, key: str) -> set[tuple[str, frozenset[str], frozenset[str], frozenset[str]]]:
    """(zone, names, types, actions) of every ChangeResourceRecordSets the function may send."""
    found = set()
    for grant in function_grants(synth, key):
        if grant.action != "route53:ChangeResourceRecordSets":
            continue
        keys = grant.condition["ForAllValues:StringEquals"]
        assert grant.condition["Null"] == dict.fromkeys(keys, "false"), "a request without the keys passes nothing"
        found.add(
            (
                grant.resource,
                frozenset(keys["route53:ChangeResourceRecordSetsNormalizedRecordNames"]),
                frozenset(keys["route53:ChangeResourceRecordSetsRecordTypes"]),
                frozenset(keys["route53:ChangeResourceRecordSetsActions"]),
            )
        )
    return found


def test_dns_steps_may_change_exactly_their_records_types_and_actions_in_the_configured_zone(prod: Synth):
    # Names as IAM compares them: lower case, no trailing dot.
    production = frozenset(s.dns.name.rstrip(".") for s in prod.config.services)
    drill = frozenset(d.dns.name.rstrip(".") for d in prod.config.drill.services)  # type: ignore[union-attr]
    a_records = frozenset({"A"})
    # Steps: SwitchDns (production in a recovery, the drill records in a drill) and LowerTtl (production): UPSERT.
    assert record_changes(prod, "Steps") == {
        (PROD_ZONE, production, a_records, frozenset({"UPSERT"})),
        (PROD_ZONE, drill, a_records, frozenset({"UPSERT"})),
    }
    # SiteSteps: CleanUpDrill restores (UPSERT) or removes (DELETE) the drill records, and nothing of production.
    assert record_changes(prod, "SiteSteps") == {(PROD_ZONE, drill, a_records, frozenset({"UPSERT", "DELETE"}))}
    for key in ("Probe", "Evaluate", "AgentReports", "Control", "ExecutionEnded"):
        assert not record_changes(prod, key), key


def test_no_function_may_look_a_zone_up_by_name_each_is_given_the_zone_ids(prod: Synth):
    for spec in FUNCTIONS:
        assert not resources_for(function_grants(prod, spec.key), "route53:ListHostedZonesByName"), spec.key
    for function in resources(prod, "AWS::Lambda::Function").values():
        given = json.loads(function["Properties"]["Environment"]["Variables"]["DCWATCH_HOSTED_ZONE_IDS"])
        assert given == {"hosting.example.": ZONE_ID}


def test_dns_changes_are_followed_by_change_id_and_verified_by_asking_route53(prod: Synth):
    checks = function_grants(prod, "Steps")  # CheckDns
    assert resources_for(checks, "route53:GetChange") == ["arn:aws:route53:::change/*"]
    assert resources_for(checks, "route53:TestDNSAnswer") == ["*"]


def test_workflow_role_invokes_exactly_its_steps(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    granted = grants(demo, machine["RoleArn"]["Fn::GetAtt"][0])
    invoked = {i for r in resources_for(granted, "lambda:InvokeFunction") for i in refs(r)}
    assert invoked == {demo.function_id(key) for key in STEP_KEYS}
    assert services_of(granted) == {"lambda", "logs", "xray"}


def test_a_drill_reads_its_records_and_lower_ttl_the_current_values_only_in_the_configured_zone(prod: Synth):
    # PrepareDrill and CleanUpDrill (SiteSteps); LowerTtl (Steps) reads the current values it re-writes.
    for key in ("SiteSteps", "Steps"):
        assert resources_for(function_grants(prod, key), "route53:ListResourceRecordSets") == [PROD_ZONE], key
    for key in ("Probe", "Evaluate", "AgentReports", "Control", "ExecutionEnded"):
        assert not resources_for(function_grants(prod, key), "route53:ListResourceRecordSets"), key


def test_the_ended_execution_handler_appends_audit_releases_its_lock_and_alerts_and_nothing_else(demo: Synth):
    granted = function_grants(demo, "ExecutionEnded")
    by_table = {
        key: allowed_on(granted, demo.logical_id(demo.stack.tables[key]))
        for key in ("State", "Audit", "Locks", "Idempotency")
    }
    idempotency = {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
    assert by_table == {
        "State": set(),
        "Audit": {"dynamodb:PutItem"},
        "Locks": {"dynamodb:DeleteItem", "dynamodb:GetItem"},
        "Idempotency": idempotency,
    }
    [publish] = resources_for(granted, "sns:Publish")
    assert refs(publish) == {demo.logical_id(demo.stack.topic)}
    kms = {g for g in granted if g.action.startswith("kms:")}
    assert actions_of(kms) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert {i for g in kms for i in refs(g.resource)} == {demo.logical_id(demo.stack.topic.master_key)}


def test_the_control_function_is_invoked_only_through_the_operators_policy(demo: Synth):
    control = demo.function_id("Control")
    # No resource policy opens it to a service or another account, and it has no URL
    permissions = resources(demo, "AWS::Lambda::Permission").values()
    assert [p for p in permissions if control in refs(p["Properties"]["FunctionName"])] == []
    assert resources(demo, "AWS::Lambda::Url") == {}
    # No role of the stack may invoke it: not the workflow's, not a function's, not a schedule's
    for role_id in resources(demo, "AWS::IAM::Role"):
        invoking = [g for g in grants(demo, role_id) if g.action.startswith("lambda:") or g.action == "*"]
        assert [g for g in invoking if control in refs(g.resource) or g.resource == "*"] == [], role_id
    # One managed policy grants it, to whom the account's admins attach it; the stack outputs its ARN
    policies = {
        policy_id: policy["Properties"]
        for policy_id, policy in resources(demo, "AWS::IAM::ManagedPolicy").items()
        if control in refs(policy["Properties"]["PolicyDocument"])
    }
    ((policy_id, policy),) = policies.items()
    assert {(g.action, g.condition) for g in statement_grants(policy["PolicyDocument"])} == {
        ("lambda:InvokeFunction", None)
    }
    assert [g.resource for g in statement_grants(policy["PolicyDocument"])] == [{"Fn::GetAtt": [control, "Arn"]}]
    assert "Roles" not in policy and "Users" not in policy and "Groups" not in policy
    outputs = demo.template.find_outputs("ControlInvokePolicyArn")
    assert [refs(o["Value"]) for o in outputs.values()] == [{policy_id}]
