"""The synthesized stack holds what the wiring tables and the config say, and nothing more."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from aws_cdk.assertions import Annotations, Match

from dcwatch.runtime import Settings
from dcwatch.wiring import (
    FAILOVER_ASL,
    FUNCTIONS,
    FUNCTIONS_DIR,
    RULES,
    STEPS,
    TABLES,
    asl_variables,
    execution_ended_rule,
    failover_task_functions,
    message_group,
)
from dcwatch.wiring import function as function_spec
from dcwatch_infra import constants
from dcwatch_infra.build import ContextError
from dcwatch_infra.probes import probe_rate_minutes
from tests.infrastructure.synth import PLACEHOLDER, Synth, synthesize
from tests.infrastructure.template import actions_of, grants, refs, resources

pytestmark = pytest.mark.infrastructure


def test_the_deployment_has_its_own_event_bus_archived_for_replay(demo: Synth):
    demo.template.resource_count_is("AWS::Events::EventBus", 1)
    demo.template.has_resource_properties("AWS::Events::EventBus", {"Name": f"dcwatch-{demo.config.name}"})
    [archive] = resources(demo, "AWS::Events::Archive").values()
    props = archive["Properties"]
    assert refs(props["SourceArn"]) == {demo.logical_id(demo.stack.bus)}
    assert props["RetentionDays"] == 90
    assert props["EventPattern"] == {"account": [{"Ref": "AWS::AccountId"}]}, "every event of the bus"


def test_every_rule_of_the_wiring_feeds_its_function_with_the_same_pattern(demo: Synth):
    rules = [r for r in resources(demo, "AWS::Events::Rule").values() if "EventBusName" in r["Properties"]]
    assert len(rules) == len(RULES)
    bus_id = demo.logical_id(demo.stack.bus)
    for spec in RULES:
        matching = [r["Properties"] for r in rules if r["Properties"]["EventPattern"] == spec.pattern]
        assert len(matching) == 1, f"no rule with the pattern of {spec.name}: {spec.pattern}"
        rule = matching[0]
        assert rule["EventBusName"] == {"Ref": bus_id}
        [target] = rule["Targets"]
        if spec.queue is None:
            assert target["Arn"] == {"Fn::GetAtt": [demo.function_id(spec.target), "Arn"]}
            assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 3600
            continue
        # Through its FIFO queue: one message group, the queue feeding the function in batches.
        assert target["SqsParameters"] == {"MessageGroupId": message_group(demo.config.name)}
        [queue_id] = [
            k for k, q in resources(demo, "AWS::SQS::Queue").items() if target["Arn"] == {"Fn::GetAtt": [k, "Arn"]}
        ]
        [mapping] = [
            m["Properties"]
            for m in resources(demo, "AWS::Lambda::EventSourceMapping").values()
            if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
        ]
        assert mapping["FunctionName"] == {"Ref": demo.function_id(spec.target)}
        assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (
            spec.queue.batch_size,
            ["ReportBatchItemFailures"],
        )


def test_the_probe_rounds_queue_is_fifo_deduplicated_outlives_its_consumer_and_keeps_what_keeps_failing(demo: Synth):
    [spec] = [r for r in RULES if r.queue is not None]
    queues = resources(demo, "AWS::SQS::Queue")
    queue = queues[demo.logical_id(demo.stack.node.find_child(constants.queue_id(spec.name)))]["Properties"]
    assert (queue["FifoQueue"], queue["ContentBasedDeduplication"]) == (True, True)
    timeout = function_spec(spec.target).timeout_s
    assert queue["VisibilityTimeout"] == 6 * timeout, "a batch in flight is never handed to a second copy"
    dead_id = demo.logical_id(demo.stack.dead_letters[spec.name])
    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dead_id, "Arn"]},
        "maxReceiveCount": spec.queue.max_receives,
    }
    assert queues[dead_id]["Properties"]["FifoQueue"] is True


def test_a_stopped_or_timed_out_execution_of_this_workflow_reaches_its_handler_from_the_default_bus(demo: Synth):
    on_default_bus = [r["Properties"] for r in resources(demo, "AWS::Events::Rule").values()]
    on_default_bus = [p for p in on_default_bus if "EventBusName" not in p]
    [rule] = on_default_bus
    machine = {"Ref": demo.logical_id(demo.stack.state_machine)}
    assert rule["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [machine], "status": ["ABORTED", "TIMED_OUT"]},
    }
    assert rule["EventPattern"] == execution_ended_rule(machine).pattern  # type: ignore[arg-type]
    [target] = rule["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": [demo.function_id("ExecutionEnded"), "Arn"]}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 3600, "MaximumRetryAttempts": 8}


def test_one_lambda_per_wiring_entry_on_the_newest_python_on_graviton(demo: Synth):
    functions = resources(demo, "AWS::Lambda::Function")
    assert len(functions) == len(FUNCTIONS) + 1, "the demo's network: a second probe, inside the VPC"
    for spec in FUNCTIONS:
        props = functions[demo.function_id(spec.key)]["Properties"]
        assert props["Handler"] == spec.handler, spec.key
        assert props["Runtime"] == "python3.14"
        assert props["Architectures"] == ["arm64"]
        assert (props["Timeout"], props["MemorySize"]) == (spec.timeout_s, spec.memory_mb)
        assert props["TracingConfig"] == {"Mode": "Active"}
        assert props.get("ReservedConcurrentExecutions") == spec.reserved_concurrency, spec.key


def test_every_stack_carries_the_config_tags_itself_and_on_its_functions(prod: Synth):
    # Stack tags are what tag policies and cost reports see; CloudFormation also puts them on what it creates.
    manifest = json.loads((prod.outdir / "manifest.json").read_text(encoding="utf-8"))
    tags = [{"Key": k, "Value": v} for k, v in prod.config.tags.items()]
    assert tags
    for stack, template in ((prod.stack, prod.template), (prod.probe_stack, prod.probe_template)):
        assert stack is not None and template is not None
        assert manifest["artifacts"][stack.artifact_id]["properties"]["tags"] == prod.config.tags
        for function in template.find_resources("AWS::Lambda::Function").values():
            assert all(tag in function["Properties"]["Tags"] for tag in tags), stack.stack_name


def test_a_probe_round_never_runs_twice_at_once_nor_late(demo: Synth):
    probes = {demo.logical_id(probe) for probe in demo.stack.probes.values()}
    assert len(probes) == 2
    invoke_configs = {
        c["Properties"]["FunctionName"]["Ref"]: c["Properties"]
        for c in resources(demo, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert probes <= set(invoke_configs), "(AgentReports has one too: its failures go to a dead-letter queue)"
    for probe in probes:
        assert resources(demo, "AWS::Lambda::Function")[probe]["Properties"]["ReservedConcurrentExecutions"] == 1
        assert invoke_configs[probe]["MaximumRetryAttempts"] == 0
        assert invoke_configs[probe]["MaximumEventAgeInSeconds"] == 60


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
        settings = Settings.from_env(
            {name: value if isinstance(value, str) else f"<{name}>" for name, value in env.items()}
        )
        assert env["DCWATCH_CONFIG"] == "/opt/dcwatch/config.yaml"
        assert env["POWERTOOLS_SERVICE_NAME"] == "dcwatch"
        assert env["POWERTOOLS_METRICS_NAMESPACE"] == f"dcwatch/{demo.config.name}"
        assert env["DCWATCH_BUS_NAME"] == {"Ref": demo.logical_id(demo.stack.bus)}
        for table in TABLES:
            assert env[table.env] == {"Ref": demo.logical_id(demo.stack.tables[table.key])}, table.env
        assert env["DCWATCH_TOPIC_ARN"] == {"Ref": demo.logical_id(demo.stack.topic)}
        assert settings.bus_name and settings.table_name and settings.audit_table_name and settings.locks_table_name
        if spec.key == "Evaluate":
            assert env["DCWATCH_STATE_MACHINE_ARN"] == {"Ref": demo.logical_id(demo.stack.state_machine)}
        else:
            assert not settings.state_machine_arn, f"{spec.key} needs no state machine (and would make a cycle)"
        if spec.key == "Probe":
            assert (env["DCWATCH_VANTAGE"], env["DCWATCH_SCHEDULE_PERIOD_S"]) == ("aws-public", "60")
        else:
            assert "DCWATCH_VANTAGE" not in env


def test_every_log_group_is_kept_one_month_and_every_function_has_its_own(demo: Synth):
    groups = resources(demo, "AWS::Logs::LogGroup")
    assert {g["Properties"].get("RetentionInDays") for g in groups.values()} == {30}
    used = {
        f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in resources(demo, "AWS::Lambda::Function").values()
    }
    assert len(used) == len(FUNCTIONS) + 1, "one per function, both probes included"
    assert len(groups) == len(FUNCTIONS) + 2, "and the workflow's"


def test_config_layer_holds_the_synthesized_config_where_functions_read_it(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.config_layer)]
    staged = demo.asset(layer["Properties"]["Content"]["S3Key"])
    assert [p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file()] == ["dcwatch/config.yaml"]
    assert (staged / "dcwatch" / "config.yaml").read_bytes() == demo.config_path.read_bytes()
    assert constants.CONFIG_IN_LAMBDA == "/opt/dcwatch/config.yaml"


def test_core_layer_ships_the_package_without_the_local_runtime(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.core_layer)]
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.14"]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    package = demo.asset(layer["Properties"]["Content"]["S3Key"]) / "python" / "dcwatch"
    assert (package / "runtime.py").is_file()
    assert (package / "statemachines" / "failover.asl.json").is_file()
    assert not (package / "local").exists()
    assert not list(package.rglob("__pycache__"))
    assert not list(package.parent.glob("*.egg-info"))


def test_a_placeholder_dependency_layer_is_the_documented_one_and_says_so_loudly(demo: Synth):
    layer = resources(demo, "AWS::Lambda::LayerVersion")[demo.logical_id(demo.stack.deps_layer)]
    staged = demo.asset(layer["Properties"]["Content"]["S3Key"])
    assert [p.name for p in staged.iterdir()] == ["README.md"]
    assert "deps=placeholder" in (staged / "README.md").read_text(encoding="utf-8")
    assert layer["Properties"]["Description"].startswith("PLACEHOLDER without packages:")
    warning = r"the dependency layer is a PLACEHOLDER .*\[ack: dcwatch:placeholderDeps\]"
    Annotations.from_stack(demo.stack).has_warning("/dcwatch-demo", Match.string_like_regexp(warning))


def test_workflow_names_only_lambdas_of_the_stack(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    substitutions = machine["DefinitionSubstitutions"]
    assert set(substitutions) == set(asl_variables())
    functions = resources(demo, "AWS::Lambda::Function")
    for step in STEPS:
        target = substitutions[step.arn_variable]
        assert target == {"Fn::GetAtt": [demo.function_id(step.function), "Arn"]}, step.key
        assert functions[target["Fn::GetAtt"][0]]["Properties"]["Handler"] == function_spec(step.function).handler
    assert {spec.key for spec in failover_task_functions()} == {"Steps", "SiteSteps"}


def test_workflow_definition_is_the_asl_file_itself(demo: Synth):
    machine = next(iter(resources(demo, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    staged = demo.asset(machine["DefinitionS3Location"]["Key"])
    assert staged.read_bytes() == FAILOVER_ASL.read_bytes()


def test_workflow_is_standard_traced_and_logs_every_event_without_its_data(demo: Synth):
    # Execution data would put RequestApproval's parameters, the task token that answers the gate, in the logs.
    demo.template.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineName": f"dcwatch-{demo.config.name}-failover",
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": {
                "Level": "ALL",
                "IncludeExecutionData": False,
                "Destinations": [
                    {"CloudWatchLogsLogGroup": {"LogGroupArn": {"Fn::GetAtt": [Match.any_value(), "Arn"]}}}
                ],
            },
        },
    )


def test_probe_schedules_invoke_only_the_probe_functions(demo: Synth):
    schedules = [s["Properties"] for s in resources(demo, "AWS::Scheduler::Schedule").values()]
    probes = {demo.logical_id(probe) for probe in demo.stack.probes.values()}
    assert sorted(refs(s["Target"]["Arn"]).pop() for s in schedules) == sorted(probes)
    for schedule in schedules:
        assert schedule["ScheduleExpression"] == "rate(1 minute)"
        assert schedule["Target"]["RetryPolicy"] == {"MaximumEventAgeInSeconds": 60, "MaximumRetryAttempts": 2}
    [role_id] = {schedule["Target"]["RoleArn"]["Fn::GetAtt"][0] for schedule in schedules}
    role = resources(demo, "AWS::IAM::Role")[role_id]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    granted = grants(demo, role_id)
    assert actions_of(granted) == {"lambda:InvokeFunction"}
    assert {i for g in granted for i in refs(g.resource)} == probes


def test_a_sub_minute_interval_runs_as_rounds_inside_each_call_without_a_warning(deployable: Synth):
    assert deployable.config.probe.interval_s < 60
    Annotations.from_stack(deployable.stack).has_no_warning("*", Match.string_like_regexp(r"interval"))


def test_an_interval_that_is_no_whole_number_of_minutes_is_reported_at_synth(tmp_path: Path):
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["probe"]["interval_s"] = 90
    config = tmp_path / "odd.yaml"
    config.write_text(yaml.safe_dump(doc), encoding="utf-8")
    odd = synthesize(tmp_path / "cdk.out", **PLACEHOLDER, config=str(config))
    Annotations.from_stack(odd.stack).has_warning("*", Match.string_like_regexp(r"probe\.interval_s=90 "))


@pytest.mark.parametrize(("interval_s", "minutes"), [(1, 1), (59, 1), (60, 1), (119, 1), (120, 2), (900, 15)])
def test_probe_rate_is_the_interval_in_whole_minutes_at_least_one(interval_s: int, minutes: int):
    assert probe_rate_minutes(interval_s) == minutes


def test_alerts_go_to_the_configured_addresses_over_a_topic_with_its_own_rotating_key(demo: Synth):
    subscriptions = resources(demo, "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(demo.config.alerts.email)
    assert {s["Properties"]["Protocol"] for s in subscriptions} == {"email"}
    [topic] = resources(demo, "AWS::SNS::Topic").values()
    [key_id] = refs(topic["Properties"]["KmsMasterKeyId"])
    key = resources(demo, "AWS::KMS::Key")[key_id]["Properties"]
    assert key["EnableKeyRotation"] is True
    # CloudWatch alarms publish to the topic: the key and the topic policy let them, for this account only.
    [alarms] = [
        s for s in key["KeyPolicy"]["Statement"] if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
    ]
    assert set(alarms["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert alarms["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    [policy] = resources(demo, "AWS::SNS::TopicPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )
    [publish] = [s for s in statements if s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}]
    assert publish["Action"] == "sns:Publish" and "aws:SourceAccount" in publish["Condition"]["StringEquals"]


def test_state_audit_locks_and_idempotency_tables_are_on_demand_with_point_in_time_recovery(demo: Synth):
    tables = resources(demo, "AWS::DynamoDB::Table")
    assert len(tables) == len(TABLES) == 4
    for spec in TABLES:
        table = tables[demo.logical_id(demo.stack.tables[spec.key])]
        props = table["Properties"]
        assert props["KeySchema"] == [{"AttributeName": k, "KeyType": t} for k, t in spec.keys.items()], spec.key
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if spec.ttl_attribute:
            assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props, spec.key


def test_the_audit_trail_survives_the_stack_and_cannot_be_deleted_by_accident(demo: Synth):
    tables = resources(demo, "AWS::DynamoDB::Table")
    audit = tables[demo.logical_id(demo.stack.tables["Audit"])]
    assert audit["DeletionPolicy"] == audit["UpdateReplacePolicy"] == "Retain"
    assert audit["Properties"]["DeletionProtectionEnabled"] is True
    for key in ("State", "Locks"):
        table = tables[demo.logical_id(demo.stack.tables[key])]
        assert table["DeletionPolicy"] == "Delete" and not table["Properties"].get("DeletionProtectionEnabled"), key


def test_stack_outputs_name_what_operators_and_the_cli_need(demo: Synth):
    outputs = demo.template.find_outputs("*")
    assert outputs["BusName"]["Value"] == {"Ref": demo.logical_id(demo.stack.bus)}
    assert outputs["StateMachineArn"]["Value"] == {"Ref": demo.logical_id(demo.stack.state_machine)}
    assert outputs["TopicArn"]["Value"] == {"Ref": demo.logical_id(demo.stack.topic)}
    assert outputs["TableName"]["Value"] == {"Ref": demo.logical_id(demo.stack.table)}
    assert outputs["AuditTableName"]["Value"] == {"Ref": demo.logical_id(demo.stack.tables["Audit"])}
    assert outputs["LocksTableName"]["Value"] == {"Ref": demo.logical_id(demo.stack.tables["Locks"])}
    assert outputs["DashboardName"]["Value"] == f"dcwatch-{demo.config.name}"


def test_config_tags_are_on_every_taggable_resource(demo: Synth):
    assert demo.config.tags == {"owner": "noc", "cost-centre": "hosting"}
    tags = [{"Key": k, "Value": v} for k, v in sorted(demo.config.tags.items())]
    for type_ in (
        "AWS::DynamoDB::Table",
        "AWS::Lambda::Function",
        "AWS::SNS::Topic",
        "AWS::KMS::Key",
        "AWS::IAM::Role",
    ):
        for logical_id, resource in resources(demo, type_).items():
            config_tags = [t for t in resource["Properties"]["Tags"] if not t["Key"].startswith("dcwatch:")]
            assert config_tags == tags, logical_id
    for logical_id, machine in resources(demo, "AWS::StepFunctions::StateMachine").items():
        assert machine["Properties"]["Tags"] == tags, logical_id


def test_by_default_the_workflow_invokes_its_step_functions_with_no_standing_cost(demo: Synth):
    demo.template.resource_count_is("AWS::Lambda::Alias", 0)
    demo.template.resource_count_is("AWS::Lambda::Version", 0)


def test_warm_steps_keep_environments_of_each_step_function_provisioned_and_the_workflow_invokes_them(tmp_path):
    warm = synthesize(tmp_path, **PLACEHOLDER, warm_steps="1")
    aliases = resources(warm, "AWS::Lambda::Alias")
    provisioned = {
        alias["Properties"]["FunctionName"]["Ref"]: alias["Properties"]["ProvisionedConcurrencyConfig"]
        for alias in aliases.values()
    }
    assert provisioned == {
        warm.function_id(key): {"ProvisionedConcurrentExecutions": 1} for key in ("Steps", "SiteSteps")
    }
    machine = next(iter(resources(warm, "AWS::StepFunctions::StateMachine").values()))["Properties"]
    invoked = {value["Ref"] for value in machine["DefinitionSubstitutions"].values()}
    assert invoked == set(aliases), "every Task invokes a warm alias, not the function's unpublished $LATEST"


def test_warm_steps_is_a_small_count(tmp_path):
    with pytest.raises(ContextError, match="warm_steps: expected 0..2"):
        synthesize(tmp_path, **PLACEHOLDER, warm_steps="50")
