"""Events and workflow inputs are a contract: schema, model and sample agree."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from dcwatch.config import parse_config
from dcwatch.contracts import CONTRACTS, schema
from dcwatch.errors import InvalidRequest
from dcwatch.events import ProbeRound, SiteStatusChanged
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.recovery.request import parse_request
from tests.helpers import EVENTS, demo_config, load_event

SAMPLES = {"samples/ProbeRound.json": ProbeRound, "samples/SiteStatusChanged.json": SiteStatusChanged}
INPUTS = ["failover-manual.json", "failover-manual-live.json"]


@pytest.mark.parametrize("name", CONTRACTS)
def test_the_committed_schema_is_the_one_the_model_generates(name):
    committed = json.loads((EVENTS / "schemas" / f"{name}.json").read_text())
    assert committed == schema(name), f"events/schemas/{name}.json is stale: run `make schemas`"


@pytest.mark.parametrize(("name", "model"), SAMPLES.items())
def test_every_sample_event_validates_against_its_schema_and_parses_with_its_model(name, model):
    event = load_event(name)
    assert event["detail-type"] == model.__name__
    jsonschema.validate(event["detail"], schema(model.__name__))
    model.model_validate(event["detail"])


@pytest.mark.parametrize("name", INPUTS)
def test_the_manual_trigger_samples_are_valid_requests_for_the_demo_config(name):
    raw = load_event(name)
    jsonschema.validate(raw, schema("FailoverRequest"))
    assert parse_request(raw, demo_config()).from_site == "dc-a"


def test_the_shipped_manual_sample_is_a_dry_run_so_copying_it_is_safe():
    assert load_event("failover-manual.json")["dryRun"] is True


@pytest.mark.parametrize(("name", "model"), SAMPLES.items())
def test_a_detail_without_its_site_fails_schema_and_model_alike(name, model):
    detail = copy.deepcopy(load_event(name)["detail"])
    del detail["site"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(detail, schema(model.__name__))
    with pytest.raises(ValueError):
        model.model_validate(detail)


def test_a_request_with_an_unknown_field_fails_schema_and_parser_alike():
    raw = {**load_event("failover-manual.json"), "urgent": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(raw, schema("FailoverRequest"))
    with pytest.raises(InvalidRequest, match="urgent"):
        parse_request(raw, demo_config())


@pytest.mark.parametrize("name", ["FailoverRequest", "DrillRequest"])
def test_a_scheduled_drill_leaves_its_sites_out_and_any_other_request_names_both(name):
    """The schedule starts the workflow without `from` and `to` (they are read when it runs): schema and parser
    agree on that, and on refusing a request by hand that leaves them out."""
    config = demo_config_with_schedule()
    scheduled = config.drill.schedule.request()
    jsonschema.validate(scheduled, schema(name))
    assert parse_request(scheduled, config, active_site="dc-a").to == "dc-b"
    by_hand = {k: v for k, v in scheduled.items() if k != "trigger"}
    with pytest.raises(jsonschema.ValidationError, match="'from' is a required property"):
        jsonschema.validate(by_hand, schema(name))
    with pytest.raises(InvalidRequest, match="from"):
        parse_request(by_hand, config)


def demo_config_with_schedule():
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["drill"]["schedule"] = {"expression": "rate(1 day)"}
    return parse_config(doc)
