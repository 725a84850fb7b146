"""One config file describes both sites; a bad one is refused with every problem named by path."""

from __future__ import annotations

import copy

import pytest
import yaml

from dcwatch.config import ConfigError, config_schema, load_config, parse_config
from dcwatch.local.demo import DEMO_CONFIG

DEMO = yaml.safe_load(DEMO_CONFIG.read_text())


def problems_of(doc) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    return dict(refused.value.problems)


def test_the_demo_config_is_valid_and_complete():
    config = load_config(DEMO_CONFIG)
    assert [s.name for s in config.sites] == ["dc-a", "dc-b"]
    assert config.other_site("dc-a") == "dc-b"
    assert [s.name for s in config.services] == ["shop", "radio", "transit"]


def test_field_errors_are_all_reported_with_their_paths():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["vcenter"]["url"] = "ftp://vc"
    doc["services"][1]["dns"]["ttl"] = 0
    doc["services"][2]["sites"]["dc-b"]["vms"][0]["group"] = "first"
    problems = problems_of(doc)
    assert set(problems) == {"sites[0].vcenter.url", "services[1].dns.ttl", "services[2].sites.dc-b.vms[0].group"}
    assert "expected an http(s) URL" in problems["sites[0].vcenter.url"]


def test_cross_field_errors_are_all_reported_with_their_paths():
    doc = copy.deepcopy(DEMO)
    doc["active_site"] = "dc-c"
    doc["services"][0]["sites"]["dc-b"]["dns_values"] = ["not-an-ip"]
    doc["services"][1]["sites"]["dc-a"]["vms"][0]["name"] = "shop-db-a"
    del doc["services"][2]["sites"]["dc-b"]
    problems = problems_of(doc)
    assert problems["active_site"] == "'dc-c' is not one of the sites ['dc-a', 'dc-b']"
    assert problems["services[0].sites.dc-b.dns_values"] == "'not-an-ip' is not a valid A value"
    assert "shop-db-a" in problems["services"]
    assert "needs exactly the sites" in problems["services[2].sites"]


def test_credentials_never_belong_in_the_file():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["vcenter"]["password"] = "hunter2"
    assert problems_of(doc) == {"sites[0].vcenter.password": "Extra inputs are not permitted"}


def test_a_record_outside_its_zone_is_refused():
    doc = copy.deepcopy(DEMO)
    doc["services"][0]["dns"]["name"] = "shop.elsewhere.example."
    assert "not inside zone" in problems_of(doc)["services[0].dns"]


def test_the_error_message_names_the_file_for_each_problem():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["vcenter"]["url"] = "nope"
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "prod/sites.yaml")
    assert str(refused.value).startswith("prod/sites.yaml: sites[0].vcenter.url: ")


def test_yaml_syntax_errors_point_at_line_and_column(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: demo\nsites: [\n  - oops\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    ((where, message),) = refused.value.problems
    assert where.startswith("line ") and "column" in where and "not valid YAML" in message


def test_a_tab_after_a_key_is_refused_as_the_python_yaml_loader_refuses_it(tmp_path):
    # libyaml would read it; an operator's file is read by the Python loader, as it always was
    path = tmp_path / "tabbed.yaml"
    path.write_text("name:\tdemo\n")
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert refused.value.problems == [
        ("line 1, column 6", "not valid YAML: found character '\\t' that cannot start any token")
    ]


def test_a_checked_file_reads_to_the_same_config_the_fast_way():
    # The functions read the file the synth checked through libyaml, and get the same config
    assert load_config(DEMO_CONFIG, checked=True) == load_config(DEMO_CONFIG)


def test_a_missing_file_and_a_non_mapping_are_named(tmp_path):
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "absent.yaml")
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(scalar)


def test_the_json_schema_describes_the_config():
    schema = config_schema()
    assert {"sites", "services", "thresholds", "alerts"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False


def test_every_problem_is_one_line_naming_the_file_and_the_path():
    doc = copy.deepcopy(DEMO)
    doc["active_site"] = "dc-c"
    doc["services"][0]["sites"]["dc-b"]["dns_values"] = ["300.1.2.3"]
    doc["services"][1]["sites"]["dc-a"]["vms"][0]["name"] = "shop-db-a"
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "prod/sites.yaml")
    assert len(refused.value.problems) == 3
    assert str(refused.value).splitlines() == [f"prod/sites.yaml: {p}: {m}" for p, m in refused.value.problems]


def test_a_single_cross_field_error_is_reported_at_its_own_path():
    doc = copy.deepcopy(DEMO)
    doc["active_site"] = "dc-c"
    assert problems_of(doc) == {"active_site": "'dc-c' is not one of the sites ['dc-a', 'dc-b']"}


def test_field_errors_do_not_hide_cross_field_errors():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["vcenter"]["url"] = "ftp://vc"
    doc["active_site"] = "dc-c"
    doc["services"][0]["sites"]["dc-b"]["dns_values"] = ["not-an-ip"]
    assert {"sites[0].vcenter.url", "active_site", "services[0].sites.dc-b.dns_values"} <= set(problems_of(doc))


def test_site_checks_of_every_kind_parse_and_errors_inside_them_name_their_path():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["checks"] = [
        {"name": "mirror", "url": "http://127.0.0.1:9000/api/mirror", "conditions": ["[BODY].state == in-sync"]},
        {"kind": "tcp", "name": "smtp", "host": "127.0.0.1"},
        {"kind": "dns", "name": "resolver", "query": "shop.hosting.example.", "resolver": "127.0.0.1:5353"},
        {"kind": "ftp", "name": "old"},
    ]
    problems = problems_of(doc)
    assert problems["sites[0].checks[1].port"] == "Field required"
    assert "kind must be http, tls, tcp or dns" in problems["sites[0].checks[3]"]
    assert set(problems) == {"sites[0].checks[1].port", "sites[0].checks[3]"}


def test_check_names_are_unique_per_site_and_vcenter_names_are_reserved():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["checks"] = [
        {"name": "shop-home", "url": "http://127.0.0.1:9000/"},
        {"name": "vcenter-extra", "url": "http://127.0.0.1:9000/"},
    ]
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    assert ("checks", "names repeat at site dc-a: ['shop-home']") in refused.value.problems
    assert ("checks", "names starting with 'vcenter' belong to the vCenter check: ['vcenter-extra']") in (
        refused.value.problems
    )


def test_the_demo_config_has_two_vantage_points_so_the_default_quorum_can_be_met():
    config = load_config(DEMO_CONFIG)
    assert config.vantage_points == ["aws-public", "aws-vpc"] and config.thresholds.effective_quorum == 2
    assert config.warnings == {}


def test_decision_knobs_that_could_never_hold_are_refused_with_their_paths():
    doc = copy.deepcopy(DEMO)
    doc["thresholds"] |= {"quorum": 3, "site_rule": "at_least 9", "service_rule": "at_least 2"}
    problems = problems_of(doc)
    assert problems["thresholds.quorum"].startswith("3 exceeds the 2 vantage points (aws-public, aws-vpc)")
    assert problems["thresholds.site_rule"].endswith("has 4 critical checks")
    assert "has 1 critical checks at" in problems["thresholds.service_rule"]


def test_a_rule_must_be_all_any_or_at_least_n():
    doc = copy.deepcopy(DEMO)
    doc["thresholds"]["site_rule"] = "most"
    assert "String should match pattern" in problems_of(doc)["thresholds.site_rule"]


def test_a_quorum_of_one_needs_an_explicit_opt_in():
    doc = copy.deepcopy(DEMO)
    doc["thresholds"]["quorum"] = 1
    assert "set thresholds.allow_single_vantage: true" in problems_of(doc)["thresholds.quorum"]
    doc["thresholds"]["allow_single_vantage"] = True
    assert parse_config(doc).thresholds.effective_quorum == 1


def test_a_single_vantage_point_with_the_default_quorum_is_refused_naming_the_check_and_what_to_add():
    doc = copy.deepcopy(DEMO)
    del doc["network"]
    for site in doc["sites"]:
        site["vcenter"]["reach"] = "public"
    problem = problems_of(doc)["services[0].sites.dc-a.checks[0]"]
    assert "critical check shop-home of shop at dc-a is run by 1 vantage point (aws-public)" in problem
    assert "thresholds.quorum is 2" in problem and "Add network" in problem


def test_maintenance_windows_name_known_sites_and_services_and_end_after_they_start():
    doc = copy.deepcopy(DEMO)
    doc["maintenance"] = [
        {"site": "dc-c", "service": "mail", "start": "2026-11-28T22:00:00Z", "end": "2026-11-29T02:00:00Z"},
        {"site": "dc-a", "start": "2026-11-28T22:00:00Z", "end": "2026-11-28T21:00:00Z"},
        {"site": "dc-a", "start": "2026-11-28T22:00:00", "end": "2026-11-29T02:00:00Z"},
        {"site": "dc-a", "start": "2026-11-01T00:00:00Z", "end": "2026-11-09T00:00:00Z", "weekly": True},
    ]
    problems = problems_of(doc)
    assert problems["maintenance[0].site"] == "'dc-c' is not one of the sites ['dc-a', 'dc-b']"
    assert problems["maintenance[0].service"] == "'mail' is not one of the services ['shop', 'radio', 'transit']"
    assert "is not after start" in problems["maintenance[1]"]
    assert "timezone" in problems["maintenance[2].start"]
    assert problems["maintenance[3]"] == "a weekly window must be shorter than a week"


def test_the_lease_must_outlast_the_longest_wait_of_the_workflow():
    doc = copy.deepcopy(DEMO)
    doc["workflow"] = {"group_timeout_s": 600, "dns_timeout_s": 60, "lease_s": 300}
    assert "lease_s 300 must be at least" in problems_of(doc)["workflow"]


def test_a_site_named_in_the_manual_namespace_is_refused_so_no_start_by_hand_can_write_into_its_incidents():
    doc = copy.deepcopy(DEMO)
    doc["sites"][0]["name"] = "manual-a"
    assert "may not start with 'manual-'" in problems_of(doc)["sites[0].name"]
