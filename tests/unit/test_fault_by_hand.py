"""`dcwatch fault ...`: each command line is the scenario step of the same name, checked against the running config
as a scenario file's step is; `up`'s env file is shell that sources back to the same values."""

from __future__ import annotations

import shlex

import pytest

from dcwatch.cli import parser
from dcwatch.cli.local import _fault_step
from dcwatch.config import load_config
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.fault_channel import FaultRefused, parse_fault
from dcwatch.local.up import env_lines

CONFIG = load_config(DEMO_CONFIG)


def step_of(*argv: str) -> dict:
    return _fault_step(parser().parse_args(["fault", *argv]))


@pytest.mark.parametrize(
    ("argv", "action", "described"),
    [
        (["kill-site", "active"], "kill_site", "kill_site active"),
        (["vcenter-down", "dc-b"], "vcenter_down", "vcenter_down dc-b"),
        (["stop-service", "standby", "shop"], "stop_service", "shop"),
        (["start-service", "dc-a", "radio"], "start_service", "radio"),
        (["cut-link", "aws-vpc", "--site", "active", "--path", "private", "--blackhole"], "cut", "blackhole"),
        (["heal"], "heal", "heal {}"),
        (["heal", "--between", "aws", "active"], "heal", "aws"),
    ],
)
def test_each_fault_command_is_the_scenario_step_of_that_name(argv, action, described):
    spec = parse_fault(CONFIG, step_of(*argv))
    (step,) = spec.steps
    assert step.action == action and step.at == 0
    assert described in step.describe()


def test_a_fault_naming_what_the_config_lacks_is_refused_naming_it():
    with pytest.raises(FaultRefused, match=r"kill_site: unknown site 'dc-x'"):
        parse_fault(CONFIG, step_of("kill-site", "dc-x"))
    with pytest.raises(FaultRefused, match=r"stop_service.service: unknown service 'bakery'"):
        parse_fault(CONFIG, step_of("stop-service", "active", "bakery"))
    with pytest.raises(FaultRefused, match=r"unknown vantage point 'moon'"):
        parse_fault(CONFIG, step_of("cut-link", "moon"))


def test_what_is_not_one_step_is_refused():
    with pytest.raises(FaultRefused, match="exactly one of"):
        parse_fault(CONFIG, {})
    with pytest.raises(FaultRefused):
        parse_fault(CONFIG, {"kill_site": "active", "vcenter_down": "active"})


def test_the_env_file_sources_back_to_the_same_values():
    values = {"DCWATCH_CONFIG": "/tmp/a dir/it's.yaml", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"}
    for line, (key, value) in zip(env_lines(values), values.items(), strict=True):
        assert shlex.split(line) == ["export", f"{key}={value}"]
