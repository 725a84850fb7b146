"""Events and workflow inputs are a contract: schema, model and sample agree."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest

from dcwatch.contracts import CONTRACTS, schema
from dcwatch.errors import InvalidRequest
from dcwatch.events import ProbeRound, SiteStatusChanged
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
