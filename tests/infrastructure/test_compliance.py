"""cdk-nag finds nothing unexplained, cfn-lint finds nothing, and `make synth` needs no network nor AWS."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcwatch.wiring import REPO_ROOT
from dcwatch_infra import constants
from tests.infrastructure.synth import Synth, findings, offline_environment, zone_ids_context

pytestmark = pytest.mark.infrastructure

INFRA = REPO_ROOT / "infra"
CFN_LINT = str(Path(sys.executable).with_name("cfn-lint"))
# As `make synth` names the demo's zone: a synth needs the id of every zone of its config.
DEMO_ZONE_IDS = f"hosted_zone_ids={zone_ids_context(constants.DEMO_CONFIG)}"
# Every finding the stacks accept, on which constructs. A new one is a decision: add it here with its reason.
ACKNOWLEDGED = {
    ("AwsSolutions-IAM5[Resource::*]", "X-Ray"): "every function role (tracing)",
    ("AwsSolutions-IAM5[Resource::*]", "TestDNSAnswer"): "CheckDns",
    ("AwsSolutions-IAM5[Resource::*]", "network-interface"): "every function inside the VPC",
    ("AwsSolutions-IAM5[Resource::*]", "log-delivery"): "the workflow's role",
    ("AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:route53:::change/*]", "change ids"): "CheckDns",
    ("AwsSolutions-IAM5[Action::kms:GenerateDataKey*]", "alerts topic"): "Notify, NotifyFailure",
    ("AwsSolutions-IAM5[Resource::<Probe", "versions"): "the Scheduler role, per probe",
    ("AwsSolutions-SQS3", "it is a dead-letter queue"): "the agent-reports rule's and AgentReports' async failures",
    ("AwsSolutions-SQS3", "of the drill schedule"): "the drill schedule's dead letters",
    ("AwsSolutions-S1", "CloudTrail's data events"): "the report bucket: no second bucket for access logs",
    ("AwsSolutions-IAM5[Resource::<Reports", "PutObject on the report prefix"): "the report writers' role",
}


def acknowledgements(synth: Synth) -> dict[tuple[str, str], set[str]]:
    """(finding, reason) -> logical ids of the resources it is acknowledged on, over every stack of the synth;
    a partition literal (a stack whose region is known) reads as the pseudo parameter."""
    found: dict[tuple[str, str], set[str]] = {}
    for path in synth.template_files():
        for logical_id, resource in json.loads(path.read_text(encoding="utf-8"))["Resources"].items():
            for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", []):
                if rule["id"].startswith("AwsSolutions-"):  # CDK acknowledges some of its own validations too
                    finding = re.sub(r"::arn:aws[a-z-]*:", "::arn:<AWS::Partition>:", rule["id"])
                    found.setdefault((finding, rule["reason"]), set()).add(logical_id)
    return found


def test_cdk_nag_aws_solutions_finds_nothing_unacknowledged(demo: Synth, prod: Synth, readme: Synth, flat: Synth):
    # The synth itself fails on a finding (tests.infrastructure.synth.NagFindings names them); the report says so.
    for synth in (demo, prod, readme, flat):
        assert findings(synth.outdir) == []
        assert len(synth.template_files()) == (1 if synth is demo else 2), "a probe stack with secondary_region"


def test_every_acknowledged_finding_carries_a_reason_that_is_one_we_decided_on(
    demo: Synth, prod: Synth, readme: Synth, flat: Synth
):
    for synth in (demo, prod, readme, flat):
        for (finding, reason), where in acknowledgements(synth).items():
            assert len(reason) >= 40, f"{finding} on {sorted(where)}: say why"
            explained = [k for k in ACKNOWLEDGED if finding.startswith(k[0]) and k[1] in reason]
            assert explained, f"{finding} on {sorted(where)} ({reason}) is not among the decided acknowledgements"


def test_no_synth_accepts_a_wildcard_zone(demo: Synth, prod: Synth, readme: Synth, flat: Synth):
    for synth in (demo, prod, readme, flat):
        assert not [f for f, _ in acknowledgements(synth) if "hostedzone/*" in f]


def test_cfn_lint_finds_nothing_in_the_synthesized_templates(demo: Synth, prod: Synth, readme: Synth, flat: Synth):
    templates = [str(path) for synth in (demo, prod, readme, flat) for path in synth.template_files()]
    done = subprocess.run(
        [CFN_LINT, "--regions", "eu-central-1", "eu-west-1", "us-east-1", "--", *templates],
        cwd=INFRA,  # where .cfnlintrc.yaml is
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_synth_needs_no_network_no_credentials_and_well_under_two_minutes(tmp_path: Path):
    env = offline_environment() | {"CDK_OUTDIR": str(tmp_path / "cdk.out")}
    started = time.monotonic()
    # As `make synth` runs it: with the offline placeholder, since the real dependency layer comes from PyPI.
    command = [sys.executable, "app.py", "-c", f"deps={constants.DEPS_PLACEHOLDER}", "-c", DEMO_ZONE_IDS]
    done = subprocess.run(command, cwd=INFRA, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "cdk.out" / "dcwatch-demo.template.json").is_file()
    assert elapsed < 60, f"synth took {elapsed:.0f} s"
