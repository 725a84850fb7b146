"""The `dcwatch` command as operators use it: clear verdicts, exit codes, no tracebacks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

from dcwatch.cli import main
from dcwatch.cli.recovery import _ended
from dcwatch.local.demo import DEMO_CONFIG


def test_config_validate_accepts_the_demo_config(capsys):
    assert main(["config", "validate", str(DEMO_CONFIG)]) == 0
    assert "valid (2 sites, 3 services, active dc-a)" in capsys.readouterr().out


def test_config_validate_takes_the_file_as_every_other_command_does_too(capsys):
    assert main(["config", "validate", "--config", str(DEMO_CONFIG)]) == 0
    assert f"{DEMO_CONFIG}: valid (2 sites, 3 services, active dc-a)" in capsys.readouterr().out
    assert main(["config", "validate"]) == 2
    assert "name one config file, as FILE or as --config FILE" in capsys.readouterr().err
    assert main(["config", "validate", str(DEMO_CONFIG), "--config", "other.yaml"]) == 2


def test_config_validate_names_every_error_by_file_and_path_and_exits_2(tmp_path, capsys):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["sites"][1]["vcenter"]["url"] = "vcenter-b"
    doc["services"][0]["sites"]["dc-a"]["checks"][0]["timeout_s"] = -1
    bad = tmp_path / "sites.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["config", "validate", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: sites[1].vcenter.url: expected an http(s) URL" in err
    assert f"{bad}: services[0].sites.dc-a.checks[0].timeout_s: Input should be greater than 0" in err
    assert "Traceback" not in err


def test_config_validate_warns_loudly_when_the_quorum_verdict_may_stand_in_for_a_fencing_proof(tmp_path, capsys):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    doc["fencing"] = {"trust_quorum": True}
    trusting = tmp_path / "sites.yaml"
    trusting.write_text(yaml.safe_dump(doc))
    assert main(["config", "validate", str(trusting)]) == 0, "valid: the operator chose it"
    err = capsys.readouterr().err
    assert f"{trusting}: WARNING: fencing.trust_quorum is on:" in err and "both sites then serve" in err


def test_config_validate_of_a_missing_file_says_so(tmp_path, capsys):
    assert main(["config", "validate", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: (file): No such file or directory" in capsys.readouterr().err


def test_config_schema_is_json_schema_of_the_config(capsys):
    assert main(["config", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"sites", "services", "active_site", "thresholds"} <= set(schema["properties"])


def test_failover_checks_the_request_against_the_config_before_anything_starts(capsys):
    code = main(["failover", "--config", str(DEMO_CONFIG), "--from", "dc-a", "--to", "dc-x", "--reason", "test"])
    assert code == 2
    assert "to: unknown site 'dc-x'; known sites: dc-a, dc-b" in capsys.readouterr().err


def test_failover_dry_check_prints_the_plan_without_a_state_machine(capsys):
    code = main(["failover", "--config", str(DEMO_CONFIG), "--from", "dc-a", "--to", "dc-b", "--reason", "drill"])
    assert code == 0
    out = capsys.readouterr().out
    assert "group 1: shop-db-b, transit-db-b" in out
    assert "nothing started" in out


def test_migrate_prints_the_graceful_shutdown_before_the_power_on(capsys):
    code = main(["migrate", "--config", str(DEMO_CONFIG), "--from", "dc-a", "--to", "dc-b", "--reason", "UPS work"])
    assert code == 0
    out = capsys.readouterr().out
    assert out.index("shutdown 1: transit-app-a") < out.index("group 1: shop-db-b, transit-db-b")
    assert "fence" not in out


def test_drill_prints_only_the_drill_records_and_says_production_is_untouched(capsys):
    code = main(["drill", "--config", str(DEMO_CONFIG), "--from", "dc-a", "--to", "dc-b", "--reason", "quarterly"])
    assert code == 0
    out = capsys.readouterr().out
    assert "switch drill-shop.hosting.example. (A) to 127.0.30.1" in out, "the clones' drill address"
    assert "switch shop.hosting.example." not in out and "production DNS untouched" in out
    assert "group 1: shop-db-b-drill-<run>, transit-db-b-drill-<run>" in out, "the clones power on, not the standby"
    assert "NICs moved to the isolated network dcwatch-drill before power-on" in out


def test_failback_anywhere_but_the_original_site_is_refused_before_anything_starts(capsys):
    code = main(["failback", "--config", str(DEMO_CONFIG), "--from", "dc-a", "--to", "dc-b", "--reason", "back"])
    assert code == 2
    assert "a failback returns to the original site dc-a, not dc-b" in capsys.readouterr().err


def test_topology_prints_who_runs_where_what_each_reaches_and_what_the_network_must_provide(capsys):
    assert main(["topology", "--config", str(DEMO_CONFIG)]) == 0
    out = capsys.readouterr().out
    assert "aws-public (home region, outside any VPC) runs 6 checks: 3 at dc-a, 3 at dc-b\n" in out
    assert "aws-vpc (home region, inside the VPC) runs 14 checks: 7 at dc-a, 7 at dc-b\n" in out
    assert "  shop/shop-home 127.0.30.1:18080 at dc-b, private\n" in out, "the drill checks, never probed"
    assert "routes and security groups to the drill network (127.0.30.1:18080" in out
    assert "  dc-a, private:\n    vcenter 127.0.0.1:18989 <- aws-vpc\n" in out
    assert "    shop-home 127.0.10.1:18080 <- aws-public, aws-vpc\n" in out
    assert "functions in the VPC: Probe, SiteSteps\n" in out and "functions outside any VPC: Evaluate," in out
    assert "routes from subnet-0d3c0a7c0ffee0001, subnet-0d3c0a7c0ffee0002 over the VPN or Direct Connect" in out
    assert "a NAT gateway or VPC endpoints for the AWS APIs the functions here call: DynamoDB" in out


def test_topology_as_json_is_the_model_with_its_prerequisites(capsys):
    assert main(["topology", "--config", str(DEMO_CONFIG), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [v["name"] for v in document["vantagePoints"]] == ["aws-public", "aws-vpc"]
    vcenter = next(e for e in document["endpoints"] if (e["site"], e["check"]) == ("dc-b", "vcenter"))
    assert (vcenter["reach"], vcenter["runners"], vcenter["field"]) == ("private", ["aws-vpc"], "sites[1].vcenter")
    assert document["functions"]["SiteSteps"] == "vpc" and document["functions"]["Evaluate"] == "home"
    assert document["functions"]["Steps"] == "home"
    assert set(document["prerequisites"]) == {
        "home (home region, outside any VPC)",
        "vpc (home region, inside the VPC, vpc-0d3c0a7c0ffee0001)",
    }


def test_topology_of_a_config_whose_network_cannot_work_exits_2_naming_the_file_and_the_field(tmp_path, capsys):
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    del doc["network"]
    bad = tmp_path / "flat.yaml"
    bad.write_text(yaml.safe_dump(doc))
    assert main(["topology", "--config", str(bad), "--mermaid"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: sites[0].vcenter.reach: private" in err and "Traceback" not in err


def test_the_deploy_docs_topology_picture_is_what_the_command_prints_for_the_demo_config(capsys):
    deploy = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text(encoding="utf-8")
    section = deploy.split("\n## Topology\n", 1)[1]
    picture = re.search(r"```mermaid\n(.*?)```", section, re.S)
    assert main(["topology", "--config", str(DEMO_CONFIG), "--mermaid"]) == 0
    assert picture is not None and picture.group(1) == capsys.readouterr().out, "regenerate it with the command"


def test_drill_cleanup_without_aws_says_so_per_site_and_exits_1(capsys, monkeypatch, tmp_path):
    for variable in ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code = main(["drill", "--cleanup", "--config", str(DEMO_CONFIG), "--dry-run"])
    err = capsys.readouterr().err
    assert code == 1
    assert "dcwatch: site dc-a: You must specify a region." in err and "Traceback" not in err


def test_a_waited_recovery_ends_with_its_timeline_or_its_cause_not_the_whole_workflow_state():
    state = {
        "timeline": [{"step": "CheckDns", "at": "2026-12-07T23:11:05+00:00", "detail": "in sync", "duration_s": 0.4}]
    }
    assert _ended("SUCCEEDED", json.dumps(state)) == [
        "SUCCEEDED; timeline (start, duration, step: detail):",
        "  23:11:05    0.4 s  CheckDns: in sync",
    ]
    assert _ended("FAILED", '{"errorMessage": "lock held"}') == ['FAILED: {"errorMessage": "lock held"}']
