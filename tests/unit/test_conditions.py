"""The condition language: what operators write in the config, and how a failure reads."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from dcwatch.config import ConfigError, parse_config
from dcwatch.config.conditions import ConditionError, Observation, evaluate_all, parse_condition
from dcwatch.local.demo import DEMO_CONFIG

MIRROR = json.dumps(
    {
        "mirror": {"state": "in-sync", "lag_seconds": 4, "healthy": True},
        "members": [{"state": "ok"}, {"state": "degraded"}],
    }
)
SEEN = Observation(status=200, response_time_ms=42.0, body=MIRROR)


@pytest.mark.parametrize(
    "text",
    [
        "[STATUS] == 200",
        "[RESPONSE_TIME] < 500",
        "[BODY].mirror.state == in-sync",
        "[BODY].mirror.lag_seconds <= 30",
        "[BODY].mirror.healthy == true",
        "[BODY].members[0].state != degraded",
    ],
)
def test_conditions_that_hold_report_nothing(text):
    assert evaluate_all([parse_condition(text)], SEEN) == []


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[STATUS] == 204", "[STATUS] == 204: got 200"),
        ("[RESPONSE_TIME] < 10", "[RESPONSE_TIME] < 10: got 42"),
        ("[BODY].mirror.state == broken", "[BODY].mirror.state == broken: got in-sync"),
        ("[BODY].mirror.lag_seconds < 2", "[BODY].mirror.lag_seconds < 2: got 4"),
        ("[BODY].members[1].state == ok", "[BODY].members[1].state == ok: got degraded"),
        ("[BODY].mirror.missing == x", "[BODY].mirror.missing == x: [BODY].mirror.missing not found"),
        ("[BODY].members[5].state == ok", "[BODY].members[5].state == ok: [BODY].members[5].state not found"),
    ],
)
def test_a_failed_condition_says_what_it_got(text, reason):
    assert evaluate_all([parse_condition(text)], SEEN) == [reason]


def test_a_body_that_is_not_json_fails_path_conditions_without_crashing():
    assert evaluate_all([parse_condition("[BODY].a == 1")], Observation(200, 1.0, "<html>")) == [
        "[BODY].a == 1: [BODY].a not found"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("STATUS == 200", "expected '[PLACEHOLDER] OP VALUE'"),
        ("[CODE] == 200", "unknown placeholder [CODE]"),
        ("[STATUS].x == 200", "only [BODY] takes a path"),
        ("[STATUS] == ok", "[STATUS] compares with a number"),
        ("[BODY].a..b == 1", "cannot read the path"),
        ("[BODY].a ==", "no value to compare with"),
    ],
)
def test_a_bad_condition_is_refused_with_a_readable_message(text, message):
    with pytest.raises(ConditionError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_condition(text)


def test_a_bad_condition_in_the_config_is_a_validation_error_naming_its_path():
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc = copy.deepcopy(doc)
    doc["services"][0]["sites"]["dc-a"]["checks"][0]["conditions"] = ["[STATUS] == 200", "[CODE] == 1"]
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    ((path, message),) = refused.value.problems
    assert path == "services[0].sites.dc-a.checks[0].conditions[1]", "the path goes down to the entry"
    assert "unknown placeholder [CODE]" in message
    assert "sites.yaml: services[0].sites.dc-a.checks[0].conditions[1]: unknown placeholder [CODE]" in str(
        refused.value
    )


def test_every_bad_condition_of_a_check_is_named_by_its_own_index_so_all_are_fixed_at_once():
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text()))
    doc["services"][0]["sites"]["dc-a"]["checks"][0]["conditions"] = ["[CODE] == 1", "[STATUS] == 200", "[BODY].a =="]
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    problems = dict(refused.value.problems)
    where = "services[0].sites.dc-a.checks[0].conditions"
    assert sorted(problems) == [f"{where}[0]", f"{where}[2]"]
    assert "unknown placeholder [CODE]" in problems[f"{where}[0]"]
    assert "no value to compare with" in problems[f"{where}[2]"]
