"""The scheduled drill in the stack: an EventBridge Scheduler schedule at the config's times, starting the
failover workflow with the scheduled drill request, under a role that may do exactly that."""

from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from dcwatch_infra import constants as c
from tests.infrastructure.conftest import PROD_DRILLS
from tests.infrastructure.template import grants, resources

pytestmark = pytest.mark.infrastructure


def drill_schedules(template):
    """The schedules whose target is not a probe function: what starts a workflow."""
    return {
        k: v
        for k, v in template.find_resources("AWS::Scheduler::Schedule").items()
        if "Input" in v["Properties"]["Target"]
    }


def test_the_config_s_drill_schedule_starts_the_workflow_with_a_scheduled_drill_at_its_times(prod):
    ((_, schedule),) = drill_schedules(prod.template).items()
    props = schedule["Properties"]
    assert props["ScheduleExpression"] == PROD_DRILLS
    assert props["ScheduleExpressionTimezone"] == "Europe/Berlin"
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert props["State"] == "ENABLED"
    target = props["Target"]
    machine = prod.stack.get_logical_id(prod.stack.state_machine.node.default_child)
    assert target["Arn"] == {"Ref": machine}
    assert json.loads(target["Input"]) == {"mode": "drill", "trigger": "scheduled", "reason": "weekly drill"}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 900, "MaximumRetryAttempts": 2}
    dead = prod.stack.get_logical_id(prod.stack.drill_schedule[1].node.default_child)
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dead, "Arn"]}}


def test_the_schedule_s_role_may_start_the_workflow_and_send_to_its_dead_letters_nothing_else(prod):
    ((_, schedule),) = drill_schedules(prod.template).items()
    role = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    trust = resources(prod, "AWS::IAM::Role")[role]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]
    machine = prod.stack.get_logical_id(prod.stack.state_machine.node.default_child)
    dead = prod.stack.get_logical_id(prod.stack.drill_schedule[1].node.default_child)
    assert {(g.action, json.dumps(g.resource)) for g in grants(prod, role)} == {
        ("states:StartExecution", json.dumps({"Ref": machine})),
        ("sqs:SendMessage", json.dumps({"Fn::GetAtt": [dead, "Arn"]})),
    }


def test_what_the_schedule_could_not_deliver_is_watched_by_an_alarm(prod):
    prod.template.has_resource_properties(
        "AWS::CloudWatch::Alarm", {"AlarmName": Match.string_like_regexp(f"dead-letters-{c.DRILL_SCHEDULE}")}
    )


def test_a_config_without_a_drill_schedule_has_none(demo):
    assert demo.config.drill is not None and demo.config.drill.schedule is None
    assert drill_schedules(demo.template) == {}
    assert demo.stack.drill_schedule is None
