"""The cost model counts what the stack builds: its alarms, its dashboard, the probe schedule's rate."""

from __future__ import annotations

import pytest

from dcwatch import cost
from dcwatch_infra.probes import probe_rate_minutes
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import resources

pytestmark = pytest.mark.infrastructure


@pytest.mark.parametrize("name", ["demo", "prod", "flat"])
def test_the_model_prices_every_alarm_and_dashboard_the_stack_creates(name, request):
    synth: Synth = request.getfixturevalue(name)
    workload = cost.workload_from_config(synth.config, name)
    home_alarms = len(resources(synth, "AWS::CloudWatch::Alarm"))
    remote = len(resources_of(synth.probe_template, "AWS::CloudWatch::Alarm")) if synth.probe_template else 0
    assert workload.alarms == home_alarms + remote
    assert len(resources(synth, "AWS::CloudWatch::Dashboard")) == 1


def resources_of(template, kind: str) -> dict:
    return template.find_resources(kind)


@pytest.mark.parametrize("interval_s", [1, 2, 10, 59, 60, 90, 120, 300])
def test_the_models_probe_period_is_the_schedules(interval_s):
    assert cost.schedule_period_s(interval_s) == probe_rate_minutes(interval_s) * 60
