"""The synthesized stack does what the wiring tables and the config say, and nothing more."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Annotations, Match

from dcwatch.runtime import Settings
from dcwatch.wiring import FAILOVER_ASL, FUNCTIONS, FUNCTIONS_DIR, RULES, asl_variables, failover_task_functions
from dcwatch_infra import constants
from dcwatch_infra.stack import probe_rate_minutes
from tests.infrastructure.synth import Synth, synthesize

pytestmark = pytest.mark.infrastructure

STEP_KEYS = [spec.key for spec in failover_task_functions()]

# What each function may touch, by service (X-Ray for tracing aside). Stated here, independently of
# the stack's own tables, so that a grant added or lost in the stack shows up as a failure.
ALLOWED_SERVICES = {
    "Probe": {"events", "secretsmanager"},
    "Evaluate": {"events", "dynamodb", "states"},
    "ValidateRequest": set(),
    "CheckStandby": {"secretsmanager"},
    "StartGroup": {"secretsmanager"},
    "CheckGroup": {"secretsmanager"},
    "VerifyServices": set(),
    "SwitchDns": {"route53"},
    "CheckDns": {"route53"},
    "Notify": {"sns"},
    "RecordAudit": {"dynamodb"},
    "NotifyFailure": {"dynamodb", "sns"},
}


def resources(synth: Synth, type_: str) -> Mapping[str, Mapping[str, Any]]:
    return synth.template.find_resources(type_)


def getatt_ids(value: Any) -> set[str]:
    """Logical ids referenced by GetAtt/Ref anywhere inside a template value."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Ref" in value:
            return {value["Ref"]}
        return set().union(*(getatt_ids(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(getatt_ids(v) for v in value)) if value else set()
    return set()


def role_statements(synth: Synth, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(synth, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def function_statements(synth: Synth, key: str) -> list[dict[str, Any]]:
    function = resources(synth, "AWS::Lambda::Function")[synth.function_id(key)]
    return role_statements(synth, function["Properties"]["Role"]["Fn::GetAtt"][0])


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in actions(s)]


def test_the_deployment_has_its_own_event_bus(demo: Synth):
    demo.template.resource_count_is("AWS::Events::EventBus", 1)
    demo.template.has_resource_properties("AWS::Events::EventBus", {"Name": f"dcwatch-{demo.config.name}"})


def test_every_rule_of_the_wiring_feeds_its_function_with_the_same_pattern(demo: Synth):
    rules = list(resources(demo, "AWS::Events::Rule").values())
    assert len(rules) == len(RULES)
    bus_id = demo.logical_id(demo.stack.bus)
    for spec in RULES:
        matching = [r["Properties"] for r in rules if r["Properties"]["EventPattern"] == spec.pattern]
        assert len(matching) == 1, f"no rule with the pattern of {spec.name}: {spec.pattern}"
        rule = matching[0]
        assert rule["EventBusName"] == {"Ref": bus_id}
        assert [t["Arn"] for t in rule["Targets"]] == [{"Fn::GetAtt": [demo.function_id(spec.target), "Arn"]}]
    assert RULES[0].pattern == rules[0]["Properties"]["EventPattern"]


def test_one_lambda_per_wiring_entry_with_its_handler_and_limits(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    assert len(functions) == len(FUNCTIONS)
    for spec in FUNCTIONS:
        props = functions[demo.function_id(spec.key)]["Properties"]
        assert props["Handler"] == spec.handler, spec.key
        assert props["Runtime"] == "python3.12"
        assert (props["Timeout"], props["MemorySize"]) == (spec.timeout_s, spec.memory_mb)
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert len(props["Layers"]) == 3


def test_function_code_is_the_handler_directory_without_bytecode(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    for spec in FUNCTIONS:
        staged = demo.asset(functions[demo.function_id(spec.key)]["Properties"]["Code"]["S3Key"])
        source = FUNCTIONS_DIR / spec.code
        assert (staged / "app.py").read_bytes() == (source / "app.py").read_bytes(), spec.key
        assert not list(staged.rglob("__pycache__")) and not list(staged.rglob("*.pyc"))


def test_functions_get_the_environment_the_runtime_reads(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    for spec in FUNCTIONS:
        env = functions[demo.function_id(spec.key)]["Properties"]["Environment"]["Variables"]
        settings = Settings.from_env({name: f"<{name}>" for name in env})
        assert env["DCWATCH_CONFIG"] == "/opt/dcwatch/config.yaml"
        assert env["POWERTOOLS_SERVICE_NAME"] == "dcwatch"
        assert env["DCWATCH_BUS_NAME"] == {"Ref": demo.logical_id(demo.stack.bus)}
        assert env["DCWATCH_TABLE_NAME"] == {"Ref": demo.logical_id(demo.stack.table)}
        assert env["DCWATCH_TOPIC_ARN"] == {"Ref": demo.logical_id(demo.stack.topic)}
        assert settings.bus_name and settings.table_name and settings.topic_arn
        if spec.key == "Evaluate":
            assert env["DCWATCH_STATE_MACHINE_ARN"] == {"Ref": demo.logical_id(demo.stack.state_machine)}
        else:
            assert not settings.state_machine_arn, f"{spec.key} needs no state machine (and would make a cycle)"


def test_every_function_logs_to_its_own_group_kept_one_month(demo: Synth):
    groups = resources(demo, "AWS::Logs::LogGroup")
    used = set()
    for function in resources(demo, "AWS::Lambda::Function").values():
        group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert groups[group_id]["Properties"]["RetentionInDays"] == 30
        used.add(group_id)
    assert len(used) == len(FUNCTIONS)


def test_config_layer_holds_the_synthesized_config_where_functions_read_it(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.config_layer)]
    staged = demo.asset(layer["Properties"]["Content"]["S3Key"])
    assert [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()] == ["dcwatch/config.yaml"]
    assert (staged / "dcwatch" / "config.yaml").read_bytes() == demo.config_path.read_bytes()
    assert constants.CONFIG_IN_LAMBDA == "/opt/dcwatch/config.yaml"


def test_core_layer_ships_the_package_without_the_local_runtime(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.core_layer)]
    package = demo.asset(layer["Properties"]["Content"]["S3Key"]) / "python" / "dcwatch"
    assert (package / "runtime.py").is_file()
    assert (package / "statemachines" / "failover.asl.json").is_file()
    assert not (package / "local").exists()
    assert not list(package.rglob("__pycache__"))
    assert not list(package.parent.glob("*.egg-info"))


def test_dependency_layer_is_the_documented_placeholder_unless_asked_to_bundle(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.deps_layer)]
    staged = demo.asset(layer["Properties"]["Content"]["S3Key"])
    assert [p.name for p in staged.iterdir()] == ["README.md"]
    assert "bundle_deps=true" in (staged / "README.md").read_text(encoding="utf-8")


def test_workflow_names_only_lambdas_of_the_stack_one_source_no_drift(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    substitutions = machine["DefinitionSubstitutions"]
    assert set(substitutions) == set(asl_variables())
    functions = resources(demo, "AWS::Lambda::Function")
    for spec in failover_task_functions():
        target = substitutions[spec.arn_variable]
        assert target == {"Fn::GetAtt": [demo.function_id(spec.key), "Arn"]}
        assert functions[target["Fn::GetAtt"][0]]["Properties"]["Handler"] == spec.handler


def test_workflow_definition_is_the_asl_file_itself(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    staged = demo.asset(machine["DefinitionS3Location"]["Key"])
    assert staged.read_bytes() == FAILOVER_ASL.read_bytes()


def test_workflow_is_standard_traced_and_logs_every_event(demo: Synth):
    demo.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": f"dcwatch-{demo.config.name}-failover",
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": True,
                "Destinations": [
                    {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}}
                ],
            },
        },
    )


def test_workflow_role_invokes_exactly_its_steps(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    statements = role_statements(demo, machine["RoleArn"]["Fn::GetAtt"][0])
    invoke = statements_with(statements, "lambda:InvokeFunction")
    assert len(invoke) == 1
    assert getatt_ids(invoke[0]["Resource"]) == {demo.function_id(key) for key in STEP_KEYS}
    assert not [s for s in statements if any(a.startswith("lambda:") for a in actions(s)) and s not in invoke]


def test_probe_schedule_invokes_only_the_probe_function(demo: Synth):
    schedules = list(resources(demo, "AWS::Scheduler::Schedule").values())
    assert len(schedules) == 1
    schedule = schedules[0]["Properties"]
    probe = demo.function_id("Probe")
    assert schedule["Target"]["Arn"] == {"Fn::GetAtt": [probe, "Arn"]}
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    role_id = schedule["Target"]["RoleArn"]["Fn::GetAtt"][0]
    role = resources(demo, "AWS::IAM::Role")[role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "scheduler.amazonaws.com"}
    statements = role_statements(demo, role_id)
    assert {a for s in statements for a in actions(s)} == {"lambda:InvokeFunction"}
    assert {i for s in statements for i in getatt_ids(s["Resource"])} == {probe}


def test_a_probe_interval_below_a_minute_is_reported_at_synth(demo: Synth):
    Annotations.from_stack(demo.stack).has_warning("*", Match.string_like_regexp(r"probe\.interval_s=1 "))


@pytest.mark.parametrize(("interval_s", "minutes"), [(1, 1), (59, 1), (60, 1), (119, 1), (120, 2), (900, 15)])
def test_probe_rate_is_the_interval_in_whole_minutes_at_least_one(interval_s: int, minutes: int):
    assert probe_rate_minutes(interval_s) == minutes


def test_alerts_go_to_the_configured_addresses_over_an_encrypted_topic(demo: Synth):
    subscriptions = resources(demo, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(demo.config.alerts.email)
    assert {s["Properties"]["Protocol"] for s in subscriptions} == {"email"}
    demo.template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})


def test_state_table_is_keyed_pk_sk_on_demand_with_point_in_time_recovery(demo: Synth):
    demo.template.resource_count_is("AWS::DynamoDB::Table", 1)
    demo.template.has_resource_properties(
        "AWS::DynamoDB::Table",
        {
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        },
    )


def test_each_function_may_touch_only_the_services_of_its_job(demo: Synth):
    assert set(ALLOWED_SERVICES) == {spec.key for spec in FUNCTIONS}, "decide what a new function may touch"
    for key, allowed in ALLOWED_SERVICES.items():
        services = {a.split(":")[0] for s in function_statements(demo, key) for a in actions(s)} - {"xray"}
        assert services == allowed, key


def test_only_evaluate_starts_a_failover_and_only_this_workflow(demo: Synth):
    machine_id = demo.logical_id(demo.stack.state_machine)
    start = statements_with(function_statements(demo, "Evaluate"), "states:StartExecution")
    assert [s["Resource"] for s in start] == [{"Ref": machine_id}]
    for spec in FUNCTIONS:
        if spec.key != "Evaluate":
            assert not statements_with(function_statements(demo, spec.key), "states:StartExecution"), spec.key


def test_state_table_is_written_only_by_evaluate_and_the_audit_steps(demo: Synth):
    table_id = demo.logical_id(demo.stack.table)
    writers = {
        spec.key
        for spec in FUNCTIONS
        if any(
            table_id in getatt_ids(s["Resource"])
            for s in statements_with(function_statements(demo, spec.key), "dynamodb:PutItem")
        )
    }
    assert writers == {"Evaluate", "RecordAudit", "NotifyFailure"}


def test_vcenter_secrets_are_referenced_by_name_never_created(demo: Synth):
    demo.template.resource_count_is("AWS::SecretsManager::Secret", 0)
    for key in ("Probe", "CheckStandby", "StartGroup", "CheckGroup"):
        granted = [
            str(s["Resource"]) for s in statements_with(function_statements(demo, key), "secretsmanager:GetSecretValue")
        ]
        for site in demo.config.sites:
            assert any(f"secret:{site.vcenter.credentials_secret}-??????" in r for r in granted), (key, site.name)


def test_dns_steps_may_change_records_only_in_hosted_zones_and_follow_changes(demo: Synth):
    switch = function_statements(demo, "SwitchDns")
    [change] = statements_with(switch, "route53:ChangeResourceRecordSets")
    assert "hostedzone/*" in str(change["Resource"])
    assert statements_with(switch, "route53:ListHostedZonesByName")
    [follow] = statements_with(function_statements(demo, "CheckDns"), "route53:GetChange")
    assert "change/*" in str(follow["Resource"])


def test_stack_outputs_name_what_operators_and_the_cli_need(demo: Synth):
    outputs = demo.template.find_outputs("*")
    assert outputs["BusName"]["Value"] == {"Ref": demo.logical_id(demo.stack.bus)}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": demo.logical_id(demo.stack.state_machine)}
    assert outputs["TopicArn"]["Value"] == {"Ref": demo.logical_id(demo.stack.topic)}
    assert outputs["TableName"]["Value"] == {"Ref": demo.logical_id(demo.stack.table)}


def test_config_tags_are_on_the_resources(demo: Synth):
    assert demo.config.tags
    tags = [{"Key": k, "Value": v} for k, v in sorted(demo.config.tags.items())]
    demo.template.has_resource_properties("AWS::DynamoDB::Table", {"Tags": tags})
    demo.template.has_resource_properties("AWS::Lambda::Function", {"Tags": tags})


def test_production_shape_scopes_dns_to_the_given_zones_and_probes_at_the_interval(tmp_path: Path, demo: Synth):
    doc = yaml.safe_load(demo.config_path.read_text(encoding="utf-8"))
    doc["probe"]["interval_s"] = 300
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    prod = synthesize(
        tmp_path / "cdk.out", config=str(config), hosted_zone_ids='{"hosting.example.": "/hostedzone/Z123"}'
    )

    [change] = statements_with(function_statements(prod, "SwitchDns"), "route53:ChangeResourceRecordSets")
    assert change["Resource"] == {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":route53:::hostedzone/Z123"]]}
    prod.template.has_resource_properties("AWS::Scheduler::Schedule", {"ScheduleExpression": "rate(5 minutes)"})
    Annotations.from_stack(prod.stack).has_no_warning("*", Match.any_value())
