"""The `fencing` section, the agent's IAM policy and its report contract."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from dcwatch.adapters.agent_aws import site_lease_key
from dcwatch.agent.policy import agent_policy
from dcwatch.agent.report import AGENT_SOURCE_PREFIX, SITE_AGENT_REPORT, SiteAgentReport, agent_source
from dcwatch.config import ConfigError, parse_config
from dcwatch.config.fencing import TRUST_QUORUM_WARNING
from dcwatch.contracts import schema
from dcwatch.local.demo import DEMO_CONFIG
from tests.helpers import load_event

# The demo config without the agents it runs: each test gives its own fencing section.
DEMO = {key: value for key, value in yaml.safe_load(DEMO_CONFIG.read_text()).items() if key != "fencing"}
FENCING = {
    "renew_s": 5,
    "lease_ttl_s": 30,
    "margin_s": 10,
    "secret_file": "/etc/dcwatch/agent.key",
    "agents": {"dc-a": {"listen": "10.1.0.5:7440"}, "dc-b": {"listen": "10.2.0.5:7440"}},
}
LOCKS = "arn:aws:dynamodb:eu-central-1:123456789012:table/dcwatch-demo-locks"
AUDIT = "arn:aws:dynamodb:eu-central-1:123456789012:table/dcwatch-demo-audit"
BUS = "arn:aws:events:eu-central-1:123456789012:event-bus/dcwatch-demo"


def with_fencing(**changes: Any) -> dict[str, Any]:
    doc = copy.deepcopy(DEMO)
    doc["fencing"] = {**copy.deepcopy(FENCING), **changes}
    return doc


def problems_of(doc) -> dict[str, str]:
    with pytest.raises(ConfigError) as refused:
        parse_config(doc, "sites.yaml")
    return dict(refused.value.problems)


def test_a_fencing_section_is_optional_and_gives_the_timing_rule():
    assert parse_config(copy.deepcopy(DEMO)).fencing is None
    fencing = parse_config(with_fencing()).fencing
    assert fencing is not None
    assert (fencing.fence_after_s, fencing.act_after_s) == (20, 40)
    assert fencing.agents["dc-b"].peer_url == "http://10.2.0.5:7440"


def test_fencing_without_agents_is_valid_and_trust_quorum_alone_is_warned_about():
    doc = copy.deepcopy(DEMO)
    doc["fencing"] = {"trust_quorum": True}
    config = parse_config(doc)
    assert config.fencing.agents == {} and config.fencing.trust_quorum
    assert config.warnings == {"dcwatch:trustQuorum": TRUST_QUORUM_WARNING}
    assert parse_config(with_fencing()).warnings == {}, "agents and proofs: nothing dangerous"


def test_the_failover_lock_must_outlast_the_waits_for_the_lease_proof():
    doc = with_fencing(proof_waits=20)
    doc["workflow"] = {"lease_s": 900}
    problems = problems_of(doc)
    assert set(problems) == {"fencing.proof_waits"}
    assert problems["fencing.proof_waits"] == (
        "20 waits of up to 47 s for the lease proof need workflow.lease_s of at least 1000 (the failover lock would "
        "expire while the workflow waits), got 900"
    )


def test_a_storage_proof_is_a_condition_on_the_standbys_mirror_check():
    doc = copy.deepcopy(DEMO)
    doc["sites"][1]["checks"] = [{"name": "san-mirror", "url": "http://127.0.0.1:1/mirror", "conditions": []}]
    doc["sites"][1]["storage"] = {"check": "san-mirror", "max_lag_s": 30, "fenced_when": "peer offline"}
    assert "sites[1].storage.fenced_when" in problems_of(doc)
    doc["sites"][1]["storage"]["fenced_when"] = "[BODY].mirror.peer_state == offline"
    assert parse_config(doc).site("dc-b").storage.fenced_when == "[BODY].mirror.peer_state == offline"


def test_a_renewal_too_slow_for_the_lease_is_refused_naming_the_field():
    # Patroni's rule, for the agent: three renewals must fit before it would fence
    problems = problems_of(with_fencing(renew_s=8))
    assert set(problems) == {"fencing.renew_s"}
    assert "8 x 3 exceeds lease_ttl_s - margin_s (30 - 10 = 20)" in problems["fencing.renew_s"]


def test_a_margin_as_long_as_the_lease_is_refused():
    assert set(problems_of(with_fencing(margin_s=30))) == {"fencing.margin_s"}


def test_agents_must_be_exactly_the_sites_and_each_fence_must_stop_something():
    doc = with_fencing(agents={"dc-a": {"listen": "10.1.0.5:7440", "power_off_vms": False}})
    problems = problems_of(doc)
    assert "fencing.agents" in problems and "dc-b" in problems["fencing.agents"]
    assert "would stop nothing" in problems["fencing.agents.dc-a"]


def test_exactly_one_place_holds_the_heartbeat_key():
    assert "secret_file" in problems_of(with_fencing(secret_id="dcwatch/agent-key"))["fencing.secret_file"]
    assert set(problems_of(with_fencing(secret_file=None))) == {"fencing.secret_file"}


def test_a_bad_listen_address_is_named_by_its_path():
    doc = with_fencing(agents={"dc-a": {"listen": "10.1.0.5"}, "dc-b": {"listen": "10.2.0.5:7440"}})
    assert "expected host:port" in problems_of(doc)["fencing.agents.dc-a.listen"]


def statement(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    return next(s for s in policy["Statement"] if s["Sid"] == sid)


def test_an_agent_may_write_only_its_own_sites_lease_and_fence_records_and_put_only_its_own_reports():
    config = parse_config(with_fencing())
    policy = agent_policy(config, "dc-a", locks_table_arn=LOCKS, audit_table_arn=AUDIT, bus_arn=BUS)
    lease = statement(policy, "OwnSiteLease")
    assert lease["Resource"] == LOCKS and sorted(lease["Action"]) == ["dynamodb:GetItem", "dynamodb:PutItem"]
    assert lease["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["site-lease#dc-a"]}}
    audit = statement(policy, "OwnFenceAudit")
    assert audit["Action"] == ["dynamodb:PutItem"]  # append only: no update, no delete
    assert audit["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["dc-a-fenced-*"]}}
    reports = statement(policy, "OwnSiteReports")
    assert reports["Resource"] == BUS
    assert reports["Condition"]["StringEquals"] == {
        "events:source": "dcwatch.agent.dc-a",
        "events:detail-type": "SiteAgentReport",
    }
    # The vCenter secret of its own site only (no local credentials file configured)
    (secret,) = statement(policy, "AgentSecrets")["Resource"]
    assert secret == "arn:aws:secretsmanager:eu-central-1:123456789012:secret:dcwatch/dc-a/vcenter-??????"
    every_action = {a for s in policy["Statement"] for a in s["Action"]}
    assert not any(a.endswith(("*", "DeleteItem", "UpdateItem")) for a in every_action)


def test_the_two_agents_policies_share_no_writable_key_and_no_source():
    config = parse_config(with_fencing())
    a, b = (
        agent_policy(config, s, locks_table_arn=LOCKS, audit_table_arn=AUDIT, bus_arn=BUS) for s in ("dc-a", "dc-b")
    )

    def keys(policy):
        return {
            k
            for s in policy["Statement"]
            for c in s.get("Condition", {}).values()
            for k in c.get("dynamodb:LeadingKeys", [])
        }

    assert keys(a).isdisjoint(keys(b))
    assert site_lease_key("dc-b") in keys(b)
    assert statement(a, "OwnSiteReports")["Condition"] != statement(b, "OwnSiteReports")["Condition"]


def test_an_agent_with_local_credentials_and_key_file_reads_no_secret():
    agents = {
        "dc-a": {"listen": "10.1.0.5:7440", "vcenter_credentials_file": "/etc/dcwatch/vcenter.json"},
        "dc-b": {"listen": "10.2.0.5:7440"},
    }
    config = parse_config(with_fencing(agents=agents))
    policy = agent_policy(config, "dc-a", locks_table_arn=LOCKS, audit_table_arn=AUDIT, bus_arn=BUS)
    assert "AgentSecrets" not in {s["Sid"] for s in policy["Statement"]}
    config = parse_config(with_fencing(secret_file=None, secret_id="dcwatch/demo/agent-key", agents=agents))
    policy = agent_policy(config, "dc-a", locks_table_arn=LOCKS, audit_table_arn=AUDIT, bus_arn=BUS)
    assert statement(policy, "AgentSecrets")["Resource"] == [
        "arn:aws:secretsmanager:eu-central-1:123456789012:secret:dcwatch/demo/agent-key-??????"
    ]


def test_an_agent_reads_the_headers_secrets_of_its_own_sites_checks_and_of_its_fence_hook_only():
    doc = with_fencing()
    for site in doc["sites"]:
        site["checks"] = [{"name": "san", "url": "https://san.example/x", "headers_secret": f"san/{site['name']}"}]
    doc["fencing"]["agents"]["dc-a"]["fence_hook"] = {
        "name": "fence", "url": "https://pdu.dc-a.example/off", "headers_secret": "pdu/dc-a",
    }  # fmt: skip
    policy = agent_policy(parse_config(doc), "dc-a", locks_table_arn=LOCKS, audit_table_arn=AUDIT, bus_arn=BUS)
    prefix = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:"
    assert statement(policy, "AgentSecrets")["Resource"] == [
        f"{prefix}dcwatch/dc-a/vcenter-??????",
        f"{prefix}san/dc-a-??????",
        f"{prefix}pdu/dc-a-??????",
    ]


def test_the_report_sample_fits_its_committed_schema_and_model_and_comes_from_its_sites_source():
    event = load_event("samples/SiteAgentReport.json")
    committed = load_event("schemas/SiteAgentReport.json")
    assert committed == schema("SiteAgentReport")
    validator = Draft202012Validator(committed, format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(event["detail"])] == []
    report = SiteAgentReport.model_validate(event["detail"])
    assert event["detail-type"] == SITE_AGENT_REPORT
    assert event["source"] == agent_source(report.site) and event["source"].startswith(AGENT_SOURCE_PREFIX + ".")
    republished = json.loads(report.model_dump_json(by_alias=True))
    assert [e.message for e in validator.iter_errors(republished)] == []


def test_a_report_with_an_unknown_field_or_state_fails_schema_and_model_alike():
    detail = load_event("samples/SiteAgentReport.json")["detail"]
    validator = Draft202012Validator(load_event("schemas/SiteAgentReport.json"))
    for bad in ({**detail, "urgent": True}, {**detail, "state": "ACTIVE"}):
        assert list(validator.iter_errors(bad))
        with pytest.raises(ValueError):
            SiteAgentReport.model_validate(bad)
