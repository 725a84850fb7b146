"""Events and workflow inputs are a contract: every sample in `events/` validates against its
schema and parses with the model the handlers use, and schema and model agree on the fields.

The schemas are read from `events/` as committed; nothing here regenerates them.
"""

from __future__ import annotations

import copy
import json
import typing
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from dcwatch.detection.checks import Outcome, plan_round, run_round
from dcwatch.detection.evaluator import evaluate_round
from dcwatch.errors import InvalidRequest
from dcwatch.events import (
    EVALUATOR_SOURCE,
    PROBE_ROUND,
    SITE_STATUS_CHANGED,
    ProbeResult,
    ProbeRound,
    SiteStatusChanged,
    probe_rounds,
    probe_source,
)
from dcwatch.recovery.executions import ExecutionStatusChange
from dcwatch.recovery.request import REQUESTS, FailoverRequest, parse_request
from dcwatch.wiring import RULES, SITE_STATUS_PATTERN
from tests.helpers import demo_config, load_event
from tests.unit.fakes import FakeLeases, FakeNotifier, FakePublisher, FakeStore, FakeWorkflows

MODELS: dict[str, type[BaseModel]] = {
    "ProbeRound": ProbeRound,
    "SiteStatusChanged": SiteStatusChanged,
    "FailoverRequest": FailoverRequest,
    **REQUESTS,
    "ExecutionStatusChange": ExecutionStatusChange,
}
SAMPLES = {
    "samples/ProbeRound.json": (ProbeRound, probe_source("aws-public"), PROBE_ROUND),
    "samples/SiteStatusChanged.json": (SiteStatusChanged, EVALUATOR_SOURCE, SITE_STATUS_CHANGED),
}
MANUAL_TRIGGERS = {"failover-manual.json": True, "failover-manual-live.json": False}
ENVELOPE = {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}


def validator(name: str) -> Draft202012Validator:
    """The committed schema, with `format` asserted (an RFC 3339 time must carry its offset)."""
    return Draft202012Validator(load_event(f"schemas/{name}.json"), format_checker=Draft202012Validator.FORMAT_CHECKER)


def schema_errors(name: str, instance: Any) -> list[str]:
    errors = validator(name).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors]


def matches(pattern: dict[str, list[Any]], event: dict[str, Any]) -> bool:
    """EventBridge matching for the flat patterns dcwatch uses: `{field: [values, {"prefix": p}, {"exists": b}]}`."""

    def one(value: Any, allowed: Any) -> bool:
        if isinstance(allowed, dict) and "prefix" in allowed:
            return isinstance(value, str) and value.startswith(allowed["prefix"])
        if isinstance(allowed, dict) and "exists" in allowed:
            return (value is not None) == allowed["exists"]
        return bool(value == allowed)

    return all(any(one(event.get(field), a) for a in values) for field, values in pattern.items())


def field_names(model: type[BaseModel]) -> tuple[set[str], set[str]]:
    """(every field, the required fields) of a model, by the names on the wire (aliases)."""
    fields = {name: info.alias or name for name, info in model.model_fields.items()}
    required = {fields[name] for name, info in model.model_fields.items() if info.is_required()}
    return set(fields.values()), required


def allowed_values(prop: dict[str, Any]) -> set[Any] | None:
    """The values a schema property is restricted to (const/enum, through anyOf), or None if open."""
    if "const" in prop:
        return {prop["const"]}
    if "enum" in prop:
        return set(prop["enum"])
    if "anyOf" in prop:
        branches = [allowed_values(b) for b in prop["anyOf"] if b.get("type") != "null"]
        return set().union(*branches) if branches and None not in branches else None
    return None


@pytest.mark.parametrize("name", MODELS)
def test_every_schema_is_a_valid_draft_2020_12_schema(name):
    schema = load_event(f"schemas/{name}.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


@pytest.mark.parametrize(("name", "expected"), [(n, (s, t)) for n, (_, s, t) in SAMPLES.items()])
def test_every_sample_is_a_full_eventbridge_event_from_its_source(name, expected):
    event = load_event(name)
    assert set(event) == ENVELOPE
    assert (event["source"], event["detail-type"]) == expected


def test_the_probe_sample_is_what_the_evaluator_rule_matches_and_the_site_sample_what_operators_subscribe_to():
    (rule,) = [r for r in RULES if r.target == "Evaluate"]
    assert matches(rule.pattern, load_event("samples/ProbeRound.json"))
    assert matches(SITE_STATUS_PATTERN, load_event("samples/SiteStatusChanged.json"))
    assert not matches(rule.pattern, load_event("samples/SiteStatusChanged.json"))


@pytest.mark.parametrize(("name", "model"), [(n, m) for n, (m, _, _) in SAMPLES.items()])
def test_every_sample_detail_validates_against_its_schema_and_parses_with_its_model(name, model):
    detail = load_event(name)["detail"]
    assert schema_errors(model.__name__, detail) == []
    parsed = model.model_validate(detail)
    assert parsed.site in {s.name for s in demo_config().sites}


@pytest.mark.parametrize(("name", "model"), [(n, m) for n, (m, _, _) in SAMPLES.items()])
def test_a_parsed_sample_published_again_still_fits_its_schema(name, model):
    # The publisher sends model_dump_json(by_alias=True); what goes out must be what came in.
    parsed = model.model_validate(load_event(name)["detail"])
    republished = json.loads(parsed.model_dump_json(by_alias=True))
    assert schema_errors(model.__name__, republished) == []
    assert model.model_validate(republished) == parsed


def test_the_sample_checks_and_sites_are_those_of_the_demo_config():
    config = demo_config()
    probe = load_event("samples/ProbeRound.json")["detail"]
    checks = {(c.site, c.name, c.service) for c in plan_round(config)}
    assert {(r["site"], r["check"], r["service"]) for r in probe["results"]} <= checks
    assert probe["vantage"] in config.vantage_points
    change = load_event("samples/SiteStatusChanged.json")["detail"]
    critical = {c.name for c in plan_round(config) if c.site == change["site"] and c.critical}
    assert {f.split(":")[0] for f in change["failedChecks"]} == critical


@pytest.mark.parametrize(("name", "dry_run"), MANUAL_TRIGGERS.items())
def test_the_manual_trigger_samples_are_valid_requests_for_the_demo_config(name, dry_run):
    raw = load_event(name)
    assert schema_errors("FailoverRequest", raw) == []
    request = parse_request(raw, demo_config())
    assert (request.from_site, request.to, request.dry_run) == ("dc-a", "dc-b", dry_run)


@pytest.mark.parametrize(
    ("name", "schema"),
    [
        ("failover-manual.json", "DisasterRequest"),
        ("migration.json", "MigrationRequest"),
        ("drill.json", "DrillRequest"),
        ("failback.json", "FailbackRequest"),
    ],
)
def test_each_mode_has_a_sample_that_fits_its_own_schema_and_the_general_one_and_is_a_dry_run(name, schema):
    raw = load_event(name)
    assert schema_errors(schema, raw) == [] and schema_errors("FailoverRequest", raw) == []
    assert parse_request(raw, demo_config()).mode == raw["mode"] and raw["dryRun"] is True


def test_an_automatic_failback_fails_its_schema_and_the_parser_alike():
    raw = {**load_event("failback.json"), "trigger": "automatic"}
    assert schema_errors("FailbackRequest", raw)
    with pytest.raises(InvalidRequest, match="only ever started by hand"):
        parse_request(raw, demo_config())


def test_the_documented_manual_trigger_is_a_dry_run_so_copying_it_changes_nothing():
    assert load_event("failover-manual.json")["dryRun"] is True
    assert load_event("failover-manual-live.json")["dryRun"] is False


@pytest.mark.parametrize("name", MODELS)
def test_schema_and_model_agree_on_the_fields_and_which_are_required(name):
    schema, model = load_event(f"schemas/{name}.json"), MODELS[name]
    fields, required = field_names(model)
    assert set(schema["properties"]) == fields
    # `then`: what the schema requires unless the request is a scheduled drill (from and to, filled in later)
    assert set(schema.get("required", [])) | set(schema.get("then", {}).get("required", [])) == required
    assert (schema.get("additionalProperties") is False) == (model.model_config.get("extra") == "forbid")


@pytest.mark.parametrize("name", MODELS)
def test_schema_and_model_agree_on_the_allowed_values_of_every_choice(name):
    schema, model = load_event(f"schemas/{name}.json"), MODELS[name]
    for field, info in model.model_fields.items():
        if typing.get_origin(info.annotation) is typing.Literal:
            wire = info.alias or field
            assert allowed_values(schema["properties"][wire]) == set(typing.get_args(info.annotation)), wire


@pytest.mark.parametrize(("name", "model"), [(n, m) for n, (m, _, _) in SAMPLES.items()])
def test_a_detail_without_its_site_fails_schema_and_model_alike(name, model):
    detail = copy.deepcopy(load_event(name)["detail"])
    del detail["site"]
    assert schema_errors(model.__name__, detail) == ["(top): 'site' is a required property"]
    with pytest.raises(ValidationError, match="site"):
        model.model_validate(detail)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"reason": None}, "reason"),
        ({"reason": "ok"}, "reason"),
        ({"action": "failback"}, "action"),
        ({"dryRun": "maybe"}, "dryRun"),
        ({"incidentId": "has spaces"}, "incidentId"),
        ({"force": "yes"}, "force"),
    ],
)
def test_a_bad_manual_trigger_fails_schema_and_parser_alike_naming_the_field(change, field):
    raw = {**load_event("failover-manual.json"), **change}
    raw = {k: v for k, v in raw.items() if v is not None}
    assert schema_errors("FailoverRequest", raw), "the schema let it through"
    with pytest.raises(InvalidRequest, match=field):
        parse_request(raw, demo_config())


def test_what_the_probe_publishes_fits_the_probe_round_schema():
    # Given every check of the demo config, one of them failing
    config = demo_config()

    async def runner(check):
        return Outcome(check.name != "radio-stream", "status 503")

    # When a probe round runs
    results = run_round(plan_round(config), runner, vantage="aws", round_id="r-1")

    # Then every round, as published, fits the schema, one per site, with every result
    assert len(results) == len(plan_round(config))
    rounds = probe_rounds(results)
    assert sorted(r.site for r in rounds) == ["dc-a", "dc-b"]
    assert sum(len(r.results) for r in rounds) == len(results)
    for published in rounds:
        assert schema_errors("ProbeRound", json.loads(published.model_dump_json(by_alias=True))) == []


def test_a_large_round_comes_in_chunks_under_the_size_limit_each_saying_which_of_how_many():
    # Given 1,200 results of one site from one vantage point, with long reasons
    t0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    results = [
        ProbeResult(
            site="dc-a",
            check=f"c{n:04d}",
            service="shop",
            kind="http",
            critical=True,
            ok=False,
            reason="x" * 300,
            latency_ms=1.0,
            observed_at=t0 + timedelta(milliseconds=n),
            vantage="aws",
            round_id="r",
        )
        for n in range(1200)
    ]
    # When the probe publishes them
    rounds = probe_rounds(results)
    # Then each event stays under PutEvents' 256 KB, and together they are the round, in order, once
    assert [(r.chunk, r.chunks) for r in rounds] == [(n, len(rounds)) for n in range(len(rounds))]
    assert all(len(r.model_dump_json(by_alias=True)) < 256 * 1024 for r in rounds)
    assert [x.check for r in rounds for x in r.results] == [x.check for x in results]
    assert {r.started_at for r in rounds} == {t0}


def test_a_round_mixing_sites_or_vantage_points_is_refused():
    detail = load_event("samples/ProbeRound.json")["detail"]
    stray = {**detail["results"][0], "site": "dc-b"}
    with pytest.raises(ValidationError, match="another site or vantage point"):
        ProbeRound.model_validate({**detail, "results": [*detail["results"], stray]})
    with pytest.raises(ValidationError, match="numbered from 0"):
        ProbeRound.model_validate({**detail, "chunk": 1, "chunks": 1})


def test_what_the_evaluator_publishes_and_starts_fits_the_site_and_request_schemas():
    # Given the demo pair, the standby's vCenter proven and the active site failing every check
    config, store, publisher, workflows = demo_config(), FakeStore(), FakePublisher(), FakeWorkflows()
    t0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    active = {"dc-a"}
    decided = t0 + timedelta(seconds=9)
    for n in range(1 + config.thresholds.failures_to_down):
        results = []
        for check, vantage in product(plan_round(config), config.vantage_points):
            ok = n == 0 if check.site in active else check.service is None
            result = ProbeResult(
                site=check.site,
                check=check.name,
                service=check.service,
                kind=check.kind,  # type: ignore[arg-type]
                critical=check.critical,
                ok=ok,
                reason="" if ok else "connection refused",
                latency_ms=2.0,
                observed_at=t0 + timedelta(seconds=n),
                vantage=vantage,
                round_id=str(n),
            )
            results.append(result)
        for published in probe_rounds(results):
            ports = (store, publisher, workflows, FakeNotifier(), FakeLeases())
            evaluate_round(published, config, *ports, clock=lambda: decided)

    # Then the evaluator announced it and started the workflow with inputs the contracts accept
    (change,) = publisher.site_changes
    assert schema_errors("SiteStatusChanged", json.loads(change.model_dump_json(by_alias=True))) == []
    ((name, payload),) = workflows.started.items()
    assert name == change.incident_id
    assert schema_errors("FailoverRequest", payload) == []
    request = parse_request(payload, config)
    assert (request.trigger, request.dry_run, request.incident_id) == ("automatic", False, name)


def test_a_time_without_its_utc_offset_is_refused_by_schema_and_model_alike():
    detail = load_event("samples/ProbeRound.json")["detail"]
    naive = {**detail, "results": [{**detail["results"][0], "observedAt": "2024-05-14T08:30:00"}]}
    assert schema_errors("ProbeRound", naive)
    with pytest.raises(ValidationError, match="observedAt"):
        ProbeRound.model_validate(naive)
