"""The report bucket: evidence kept private, encrypted, versioned and undeletable, for as long as the config says;
written by the workflow's report step only."""

from __future__ import annotations

import json

import pytest

from dcwatch_infra.reports import DENIED
from tests.infrastructure.template import allowed_on, function_grants, resources, resources_for

pytestmark = pytest.mark.infrastructure


def bucket_of(synth):
    logical = synth.stack.get_logical_id(synth.stack.reports.node.default_child)
    return logical, resources(synth, "AWS::S3::Bucket")[logical]


def test_reports_are_encrypted_versioned_private_and_expire_after_the_config_s_retention(prod):
    _, bucket = bucket_of(prod)
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"] == [
        {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
    ]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 800 and rule["Status"] == "Enabled"
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"


def test_with_lock_days_each_report_is_under_object_lock_in_governance_mode(prod, demo):
    _, bucket = bucket_of(prod)
    assert bucket["Properties"]["ObjectLockEnabled"] is True
    assert bucket["Properties"]["ObjectLockConfiguration"] == {
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 400}},
    }
    _, plain = bucket_of(demo)
    assert "ObjectLockConfiguration" not in plain["Properties"], "no lock_days: the deny-delete policy alone"
    assert plain["Properties"]["LifecycleConfiguration"]["Rules"][0]["ExpirationInDays"] == 400, "the default"


def test_nobody_deletes_a_report_and_nothing_reaches_it_without_tls(demo):
    logical, _ = bucket_of(demo)
    (policy,) = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in resources(demo, "AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logical}
    ]
    (deny_delete,) = [s for s in policy if s["Effect"] == "Deny" and set(s["Action"]) == set(DENIED)]
    assert deny_delete["Principal"] == {"AWS": "*"} and "Condition" not in deny_delete
    (tls,) = [s for s in policy if s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert tls["Effect"] == "Deny" and tls["Action"] == "s3:*"


def test_only_the_workflow_s_steps_function_may_write_reports_and_only_put_them(demo):
    logical, _ = bucket_of(demo)
    for key in ("Evaluate", "Probe", "Control", "SiteSteps", "ExecutionEnded", "AgentReports"):
        assert allowed_on(function_grants(demo, key), logical) == set(), key
    granted = function_grants(demo, "Steps")
    assert allowed_on(granted, logical) == {"s3:PutObject"}
    (where,) = resources_for(granted, "s3:PutObject")
    assert json.dumps(where).endswith('"/reports/*"]]}')
