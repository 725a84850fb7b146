"""What the synth takes in: the config file, CDK context, the project's dependencies."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import pytest
import yaml

from dcwatch.config import ConfigError
from dcwatch.wiring import REPO_ROOT
from dcwatch_infra import constants
from dcwatch_infra.build import ContextError, SynthSettings, build
from dcwatch_infra.layers import layer_requirements, prune_runtime_provided

pytestmark = pytest.mark.infrastructure

APP = REPO_ROOT / "infra" / "app.py"


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["probe"]["interval_s"] = 0
    path = tmp_path / "bad-sites.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_a_bad_config_stops_the_synth_naming_the_file_and_the_field(bad_config: Path):
    # Given a config whose probe interval is zero
    app = cdk.App(context={"config": str(bad_config)})

    # When the stack is built from it, Then the error says which file and which field
    with pytest.raises(ConfigError) as raised:
        build(app)
    assert f"{bad_config}: probe.interval_s:" in str(raised.value)
    assert not app.node.children, "no stack is created from a bad config"


@pytest.mark.parametrize(
    ("network", "field"),
    [
        ({"subnet_ids": ["subnet-0123456789abcdef0", "subnet-b"]}, "network.subnet_ids[1]: String should match"),
        ({"security_group_ids": []}, "network.security_group_ids: List should have at least 1 item"),
        ({"vpc_id": "default"}, "network.vpc_id: String should match"),
    ],
)
def test_a_bad_network_stops_the_synth_naming_the_field(tmp_path: Path, network: dict, field: str):
    # Given the demo's network with one bad field: the functions inside the VPC would be attached to nothing
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    doc["network"] |= network
    path = tmp_path / "bad-network.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    # When the stack is built from it, Then the error names the file and the field, and nothing is built
    app = cdk.App(context={"config": str(path)})
    with pytest.raises(ConfigError, match=re.escape(f"{path}: {field}")):
        build(app)
    assert not app.node.children


def test_app_prints_the_config_error_and_exits_non_zero(bad_config: Path, tmp_path: Path):
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")}
    done = subprocess.run(
        [sys.executable, str(APP), "-c", f"config={bad_config}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2
    assert f"{bad_config}: probe.interval_s: Input should be greater than or equal to 1" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_a_missing_config_file_is_a_config_error_too(tmp_path: Path):
    missing = tmp_path / "nowhere.yaml"
    with pytest.raises(ConfigError, match=re.escape(f"{missing}: (file)")):
        build(cdk.App(context={"config": str(missing)}))


def test_context_defaults_to_the_demo_config_with_the_real_dependency_layer_no_zone_ids_and_no_region():
    settings = SynthSettings.from_context(cdk.App().node)
    assert settings == SynthSettings(config_path=constants.DEMO_CONFIG, placeholder_deps=False, hosted_zone_ids={})
    assert settings.region is None
    assert (settings.agent_trust_anchor_arn, settings.agent_principal) == (None, None), "no agent role by default"


def test_only_an_explicit_flag_synthesizes_the_placeholder_dependency_layer():
    assert SynthSettings.from_context(cdk.App(context={"deps": "placeholder"}).node).placeholder_deps
    assert not SynthSettings.from_context(cdk.App(context={"deps": "pip"}).node).placeholder_deps


def test_context_takes_command_line_text_or_cdk_json_objects():
    from_cli = cdk.App(context={"deps": "placeholder", "hosted_zone_ids": '{"hosting.example": "/hostedzone/Z1"}'})
    from_json = cdk.App(context={"deps": "placeholder", "hosted_zone_ids": {"hosting.example.": "Z1"}})
    assert SynthSettings.from_context(from_cli.node) == SynthSettings.from_context(from_json.node)
    assert SynthSettings.from_context(from_json.node).hosted_zone_ids == {"hosting.example.": "Z1"}


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"deps": "none"}, "deps: expected pip \\(the default\\) or placeholder, got 'none'"),
        ({"bundle_deps": "true"}, "bundle_deps: no longer used; the dependency layer is built by default"),
        ({"hosted_zone_ids": "{not json"}, "hosted_zone_ids: not valid JSON"),
        ({"hosted_zone_ids": '["Z1"]'}, "hosted_zone_ids: expected"),
        ({"hosted_zone_ids": '{"other.example.": "Z1"}'}, r"no hosted zone id for \['hosting.example.'\]"),
        ({"region": "Frankfurt"}, "region: expected an AWS region such as eu-central-1"),
        ({"agent_trust_anchor_arn": "anchor-1"}, "agent_trust_anchor_arn: expected an IAM Roles Anywhere trust anchor"),
        ({"agent_principal": "everyone"}, "agent_principal: expected an account id or an IAM user or role ARN"),
    ],
)
def test_bad_context_is_refused_before_anything_is_built(context: dict[str, str], message: str):
    app = cdk.App(context=context)
    with pytest.raises(ContextError, match=message):
        build(app)
    assert not app.node.children


def test_a_synth_without_hosted_zone_ids_stops_before_anything_is_built_naming_the_flag():
    app = cdk.App(context={"deps": "placeholder"})
    with pytest.raises(ContextError, match=re.escape('-c hosted_zone_ids=\'{"hosting.example.": ')):
        build(app)
    assert not app.node.children


def test_the_drill_records_zone_needs_its_id_too(tmp_path: Path):
    doc = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    for drill in doc["drill"]["services"]:
        drill["dns"] = {**drill["dns"], "zone": "drill.example.", "name": f"{drill['name']}.drill.example."}
    path = tmp_path / "drill-zone.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    app = cdk.App(context={"deps": "placeholder", "config": str(path), "hosted_zone_ids": '{"hosting.example.": "Z1"}'})
    with pytest.raises(ContextError, match=re.escape("no hosted zone id for ['drill.example.']")):
        build(app)


def test_app_py_without_hosted_zone_ids_exits_2_naming_the_flag(tmp_path: Path):
    env = {**os.environ, "CDK_OUTDIR": str(tmp_path / "cdk.out")}
    done = subprocess.run(
        [sys.executable, str(APP), "-c", "deps=placeholder"], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "hosted_zone_ids: no hosted zone id for ['hosting.example.']" in done.stderr
    assert "-c hosted_zone_ids=" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "cdk.out" / "manifest.json").exists()


def test_dependency_layer_installs_the_declared_dependencies_but_not_the_runtimes_boto3():
    names = {req.split(">")[0].split("=")[0].strip().lower() for req in layer_requirements()}
    assert names == {
        "pydantic",
        "pyyaml",
        "pyvmomi",
        "aws-lambda-powertools",
        "aws-xray-sdk",
        "aiohttp",
        "dnspython",
        "defusedxml",
    }


def test_dependency_layer_leaves_out_what_the_runtime_provides_even_when_pulled_in(tmp_path: Path):
    # Given a pip target where aws-xray-sdk pulled in botocore (the Lambda runtime's boto3 expects its own)
    for name in ("botocore", "botocore-1.44.8.dist-info", "s3transfer", "pydantic", "pydantic-2.14.4.dist-info"):
        (tmp_path / name).mkdir()
    (tmp_path / "six.py").write_text("")

    # When the layer is pruned, Then only the runtime's own packages go
    assert prune_runtime_provided(tmp_path) == ["botocore", "botocore-1.44.8.dist-info", "s3transfer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pydantic", "pydantic-2.14.4.dist-info", "six.py"]


def test_the_dependency_layer_targets_the_functions_runtime_and_architecture():
    assert constants.LAMBDA_PYTHON_VERSION == "3.14"
    assert all(platform.endswith("_aarch64") for platform in constants.LAMBDA_PLATFORMS)
    assert constants.LAMBDA_ARCHITECTURE.name == "arm64"
