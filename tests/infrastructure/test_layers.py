"""Every function stacks its layers as deps, core, config: a later layer's files shadow an earlier one's in /opt,
and CDK renders the layers sorted by construct path, not in the order the stack passes them."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_lambda as lambda_

from dcwatch_infra import constants
from dcwatch_infra.layers import in_template_order
from tests.infrastructure.deployed import stack_templates
from tests.infrastructure.synth import Synth
from tests.infrastructure.template import refs

pytestmark = pytest.mark.infrastructure


def layer_kinds(synth: Synth) -> dict[str, str]:
    """Logical id -> "core", "config" or "deps" of every layer of the synth, told apart by what it holds."""
    kinds = {}
    for _, template in stack_templates(synth):
        for logical_id, layer in template.find_resources("AWS::Lambda::LayerVersion").items():
            staged = synth.asset(layer["Properties"]["Content"]["S3Key"])
            if (staged / "python" / "dcwatch" / "__init__.py").is_file():
                kinds[logical_id] = "core"
            elif (staged / constants.CONFIG_IN_LAYER).is_file():
                kinds[logical_id] = "config"
            else:
                kinds[logical_id] = "deps"
    return kinds


@pytest.mark.parametrize("shape", ["demo", "prod"])
def test_every_function_of_every_stack_stacks_deps_then_core_then_config(shape: str, request: pytest.FixtureRequest):
    synth: Synth = request.getfixturevalue(shape)
    kinds = layer_kinds(synth)
    for region, template in stack_templates(synth):
        for logical_id, function in template.find_resources("AWS::Lambda::Function").items():
            layers = [kinds[id_] for layer in function["Properties"]["Layers"] for id_ in refs(layer)]
            assert layers == ["deps", "core", "config"], f"{logical_id} ({region or 'home'})"


def test_layers_whose_construct_ids_sort_otherwise_stop_the_synth():
    stack = cdk.Stack(cdk.App(), "Layers")
    code = lambda_.Code.from_asset(str(constants.DEPS_PLACEHOLDER_DIR))
    deps, core = (lambda_.LayerVersion(stack, name, code=code) for name in ("DepsLayer", "CoreLayer"))
    with pytest.raises(ValueError, match="must sort in the order the layers stack"):
        in_template_order([deps, core])
