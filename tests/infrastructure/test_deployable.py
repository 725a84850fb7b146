"""A plain synth (no flags) is what `cdk deploy` uploads: a dependency layer that holds the packages."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Annotations, Match

from tests.infrastructure.synth import Synth
from tests.infrastructure.template import resources

pytestmark = pytest.mark.infrastructure

PACKAGES = {"pydantic", "yaml", "pyVmomi", "aws_lambda_powertools", "aws_xray_sdk", "aiohttp", "dns"}


def test_a_plain_synth_ships_a_dependency_layer_that_holds_the_packages(deployable: Synth):
    layer = resources(deployable, "AWS::Lambda::LayerVersion")[deployable.logical_id(deployable.stack.deps_layer)]
    site_packages = deployable.asset(layer["Properties"]["Content"]["S3Key"]) / "python"
    names = {p.name for p in site_packages.iterdir()}
    assert names >= PACKAGES
    assert not names & {"boto3", "botocore", "s3transfer"}, "the Lambda runtime's own copies are used"
    assert layer["Properties"]["Description"] == "third-party packages of the dcwatch functions"


def test_the_layers_compiled_modules_are_built_for_the_functions_runtime_and_architecture(deployable: Synth):
    layer = resources(deployable, "AWS::Lambda::LayerVersion")[deployable.logical_id(deployable.stack.deps_layer)]
    extensions = list(deployable.asset(layer["Properties"]["Content"]["S3Key"]).rglob("*.so"))
    assert any(e.parent.name == "pydantic_core" for e in extensions)
    assert {e.name for e in extensions if not e.name.endswith("-314-aarch64-linux-gnu.so")} == set()


def test_a_plain_synth_of_the_production_shaped_demo_warns_only_that_its_agents_roles_need_a_trust(deployable: Synth):
    # The demo runs both sites' agents (fencing.agents); a plain synth names no Roles Anywhere trust anchor for
    # their roles (-c agent_trust_anchor_arn), so it creates none and says so, once. Nothing else.
    warnings = Annotations.from_stack(deployable.stack).find_warning("*", Match.any_value())
    assert [w.entry.data.rsplit(" [ack: ", 1)[-1] for w in warnings] == ["dcwatch:agentTrust]"]
