"""One source, no drift: the local runtime wires up exactly what the stack deploys.

The local runtime is started (moto, as `dcwatch demo` starts it) and read back through the AWS APIs;
the synthesized template must hold the same rule patterns, workflow definition, handlers, tables and
environment.
"""

from __future__ import annotations

import inspect
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dcwatch.adapters.secrets import Credentials
from dcwatch.local.cloud import LOCAL_ONLY_ENV, LocalCloud, Resources
from dcwatch.wiring import FUNCTIONS, RULES, TABLES
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import refs, resources

pytestmark = pytest.mark.infrastructure


@pytest.fixture(scope="module")
def local(demo: Synth) -> Iterator[tuple[LocalCloud, Resources, dict[str, str]]]:
    """The local runtime's AWS side for the demo config, and the functions' environment it sets."""
    cloud = LocalCloud(demo.config, str(demo.config_path)).start()
    try:
        provisioned = cloud.provision({site.name: Credentials("dcwatch", "local-only") for site in demo.config.sites})
        yield cloud, provisioned, {k: v for k, v in os.environ.items() if k.startswith("DCWATCH_")}
    finally:
        cloud.stop()


def local_names_to_keys(text: str, cloud: LocalCloud) -> str:
    """Local function ARNs -> `<key>`, so the local definition reads like the template's."""
    return re.sub(rf"arn:aws:lambda:[^:]+:\d+:function:{cloud.prefix}-(\w+)", r"<\1>", text)


def template_definition(demo: Synth) -> dict[str, Any]:
    """The deployed definition: the staged ASL file, each `${XArn}` replaced by `<key>` of the function it names."""
    [machine] = resources(demo, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    keys = {logical_id: key for key, fn in demo.stack.functions.items() for logical_id in [demo.logical_id(fn)]}
    names = {variable: f"<{keys[refs(value).pop()]}>" for variable, value in props["DefinitionSubstitutions"].items()}
    text = demo.asset(props["DefinitionS3Location"]["Key"]).read_text(encoding="utf-8")
    return json.loads(re.sub(r"\$\{(\w+)\}", lambda m: names[m.group(1)], text))


def test_the_workflow_definition_is_the_one_the_local_runtime_runs(demo: Synth, local):
    cloud, provisioned, _ = local
    described = cloud.client("stepfunctions").describe_state_machine(stateMachineArn=provisioned.state_machine_arn)
    assert json.loads(local_names_to_keys(described["definition"], cloud)) == template_definition(demo)


def test_rule_patterns_are_the_ones_the_local_runtime_matches(demo: Synth, local):
    cloud, provisioned, _ = local
    events = cloud.client("events")
    # The dcwatch bus's rules; the default bus's execution-ended rule has no local twin: moto emits no aws.states
    # events, so the local runtime never exercises that path (its tests invoke the handler directly).
    deployed = {
        rule["Properties"]["Description"].split(" to ")[0]: rule["Properties"]["EventPattern"]
        for rule in resources(demo, "AWS::Events::Rule").values()
        if "EventBusName" in rule["Properties"]
    }
    local_patterns = {
        spec.name: json.loads(
            events.describe_rule(Name=f"{cloud.prefix}-{spec.name}", EventBusName=provisioned.bus_name)["EventPattern"]
        )
        for spec in RULES
    }
    assert deployed == local_patterns


def test_handlers_and_their_code_are_the_ones_the_local_runtime_invokes(demo: Synth, local):
    cloud, _, _ = local
    assert cloud.lambdas is not None
    functions = resources(demo, "AWS::Lambda::Function")
    for spec in FUNCTIONS:
        deployed = functions[demo.function_id(spec.key)]["Properties"]
        local_handler = inspect.unwrap(cloud.lambdas.handlers[f"{cloud.prefix}-{spec.key}"])
        assert deployed["Handler"] == f"app.{local_handler.__name__}", spec.key
        staged = demo.asset(deployed["Code"]["S3Key"]) / "app.py"
        assert staged.read_bytes() == Path(local_handler.__code__.co_filename).read_bytes(), spec.key


def test_tables_are_keyed_as_the_local_runtime_keys_them(demo: Synth, local):
    cloud, _, env = local
    dynamodb = cloud.client("dynamodb")
    tables = resources(demo, "AWS::DynamoDB::Table")
    for spec in TABLES:
        name = env[spec.env]
        described = dynamodb.describe_table(TableName=name)["Table"]
        deployed = tables[demo.logical_id(demo.stack.tables[spec.key])]["Properties"]
        assert described["KeySchema"] == deployed["KeySchema"], spec.key
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl.get("AttributeName") == deployed.get("TimeToLiveSpecification", {}).get("AttributeName"), spec.key


def test_functions_read_the_same_environment_variables_here_and_there(demo: Synth, local):
    _, _, env = local
    deployed: set[str] = set()
    for function in resources(demo, "AWS::Lambda::Function").values():
        deployed |= {k for k in function["Properties"]["Environment"]["Variables"] if k.startswith("DCWATCH_")}
    # The report bucket is the stack's only: the local runtime keeps its reports as files (`make demo`).
    assert set(env) - set(LOCAL_ONLY_ENV) == deployed - {"DCWATCH_REPORTS_BUCKET"}


def test_functions_get_the_hosted_zone_ids_here_as_there_for_every_zone_of_the_config(demo: Synth, local):
    cloud, provisioned, env = local
    given = json.loads(env["DCWATCH_HOSTED_ZONE_IDS"])
    created = {z["Name"]: z["Id"].split("/")[-1] for z in cloud.client("route53").list_hosted_zones()["HostedZones"]}
    assert given == provisioned.zone_ids == created, "the ids of the zones the local runtime created"
    deployed = [
        json.loads(function["Properties"]["Environment"]["Variables"]["DCWATCH_HOSTED_ZONE_IDS"])
        for function in resources(demo, "AWS::Lambda::Function").values()
    ]
    assert all(d.keys() == given.keys() for d in deployed), "the same zones, by the same names"
