"""What the config names beside itself reaches Lambda with it: the CA bundles (`ca_file`) in the config layer,
where the functions' config resolves them, and read access to exactly the secrets of `headers_secret`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
import trustme
import yaml

from dcwatch.config import ConfigError, load_config
from dcwatch.wiring import STEPS
from dcwatch_infra import constants
from dcwatch_infra.build import build
from tests.infrastructure.synth import PLACEHOLDER, Synth, synthesize, zone_ids_context
from tests.infrastructure.template import function_grants, function_role, grants, resources, resources_for

pytestmark = pytest.mark.infrastructure

CHECK_SECRET = "dcwatch/shop-token"
HOOK_SECRET = "dcwatch/cdn-token"


def config_with_files(folder: Path, vcenter_ca: str = "certs/vcenter-ca.pem") -> Path:
    """The demo config with a private-CA vCenter, an HTTPS site check with its own CA bundle, a check and a
    hook authenticated by secrets; the CA files beside it."""
    (folder / "certs").mkdir(exist_ok=True)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(folder / "certs" / "vcenter-ca.pem"))
    trustme.CA().cert_pem.write_to_path(str(folder / "certs" / "shop-ca.pem"))
    doc: dict[str, Any] = yaml.safe_load(constants.DEMO_CONFIG.read_text(encoding="utf-8"))
    site = doc["sites"][0]
    site["vcenter"]["ca_file"] = vcenter_ca
    site["checks"] = [
        {"name": "portal", "url": "https://portal.dc-a.example/health", "ca_file": "certs/shop-ca.pem",
         "headers_secret": CHECK_SECRET},
    ]  # fmt: skip
    site["groups"] = [
        {
            "group": 1,
            "post_power_on": [{"name": "cdn", "url": "https://cdn.example/purge", "headers_secret": HOOK_SECRET}],
        }
    ]
    path = folder / "with-files.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def with_files(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    folder = tmp_path_factory.mktemp("config")
    return synthesize(tmp_path_factory.mktemp("cdk.out"), config=str(config_with_files(folder)), **PLACEHOLDER)


def staged_config_layer(synth: Synth) -> Path:
    layer = resources(synth, "AWS::Lambda::LayerVersion")[synth.logical_id(synth.stack.config_layer)]
    return synth.asset(layer["Properties"]["Content"]["S3Key"])


def test_the_ca_files_ship_in_the_config_layer_where_the_functions_config_finds_them(with_files: Synth):
    staged = staged_config_layer(with_files)
    shipped = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
    assert shipped == ["dcwatch/certs/shop-ca.pem", "dcwatch/certs/vcenter-ca.pem", "dcwatch/config.yaml"]
    # The staged layer is /opt in Lambda: its config, loaded from there, names files that are there.
    config = load_config(staged / constants.CONFIG_IN_LAYER)
    for _, path in config.ca_files:
        assert Path(path).is_file() and Path(path).is_relative_to(staged / "dcwatch")
    source = with_files.config_path.parent
    assert (staged / "dcwatch/certs/vcenter-ca.pem").read_bytes() == (source / "certs/vcenter-ca.pem").read_bytes()
    assert config.site("dc-a").vcenter.ca_file == str(staged / "dcwatch/certs/vcenter-ca.pem")


def secret_reads(granted: Any) -> str:
    return json.dumps(resources_for(granted, "secretsmanager:GetSecretValue"))


def test_the_functions_that_send_headers_from_a_secret_may_read_it_and_no_other(with_files: Synth):
    probes = [
        grants(with_files, function_role(with_files, with_files.logical_id(p)))
        for p in with_files.stack.probes.values()
    ]
    for granted in probes:
        assert f":secret:{CHECK_SECRET}-??????" in secret_reads(granted)
        assert HOOK_SECRET not in secret_reads(granted)
    hook_caller = function_grants(with_files, next(s.function for s in STEPS if s.key == "StartGroup"))
    assert f":secret:{HOOK_SECRET}-??????" in secret_reads(hook_caller)
    assert CHECK_SECRET not in secret_reads(function_grants(with_files, "Evaluate"))


def test_a_ca_file_outside_the_config_folder_stops_the_synth_naming_the_field(tmp_path: Path):
    outside = tmp_path / "elsewhere.pem"
    trustme.CA().cert_pem.write_to_path(str(outside))
    (tmp_path / "config").mkdir()
    path = config_with_files(tmp_path / "config", vcenter_ca=str(outside))
    with pytest.raises(ConfigError) as raised:
        build(cdk.App(context={"config": str(path), "hosted_zone_ids": zone_ids_context(path), **PLACEHOLDER}))
    [(where, message)] = raised.value.problems
    assert where == "sites[0].vcenter.ca_file"
    assert message.startswith(f"{outside} is outside {tmp_path / 'config'}: only files beside the config")
