"""From CDK context to the dcwatch stack: what `app.py` runs and what the infrastructure tests build."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from dcwatch.config import REGION_PATTERN, load_config
from dcwatch.zones import decode_zone_ids, dns_zones, zone_key
from dcwatch_infra import constants as c
from dcwatch_infra import nag
from dcwatch_infra.probe_stack import ProbeStack
from dcwatch_infra.stack import DcwatchStack, SynthInputs


class ContextError(Exception):
    """A CDK context value (`-c key=value`) that cannot be used."""


@dataclass(frozen=True)
class SynthSettings:
    """The synth's inputs from CDK context: `config`, `deps`, `hosted_zone_ids`, `region`, and who the site
    agents' roles trust: `agent_trust_anchor_arn` (IAM Roles Anywhere) and/or `agent_principal` (trials);
    `warm_steps=N`: N provisioned environments of each workflow step function (0, the default: none)."""

    config_path: Path = c.DEMO_CONFIG
    placeholder_deps: bool = False
    hosted_zone_ids: dict[str, str] = field(default_factory=dict)
    region: str | None = None
    agent_trust_anchor_arn: str | None = None
    agent_principal: str | None = None
    warm_steps: int = 0

    @classmethod
    def from_context(cls, node: Any) -> SynthSettings:
        config = node.try_get_context("config")
        return cls(
            config_path=Path(config) if config else c.DEMO_CONFIG,
            placeholder_deps=_placeholder_deps(node),
            hosted_zone_ids=_zone_ids(node.try_get_context("hosted_zone_ids")),
            region=_region(node.try_get_context("region")),
            agent_trust_anchor_arn=_trust_anchor(node.try_get_context("agent_trust_anchor_arn")),
            agent_principal=_principal(node.try_get_context("agent_principal")),
            warm_steps=_warm_steps(node.try_get_context("warm_steps")),
        )


def build(app: cdk.App) -> DcwatchStack:
    """The stack `dcwatch-<name>` for the config named in the app's context, and for each other region its
    topology places probes in (`secondary_region`) the probe stack `dcwatch-<name>-probe-<region>`;
    cdk-nag checks them all when the app is synthesized.

    Raises `dcwatch.config.ConfigError` (naming the file and every bad field) or `ContextError`.
    """
    settings = SynthSettings.from_context(app.node)
    config = load_config(settings.config_path)
    # The CDK CLI passes the profile's region; a probe in a second region must know the home region by name.
    home = settings.region or (os.environ.get("CDK_DEFAULT_REGION") if config.secondary_region else None)
    if config.secondary_region and not home:
        raise ContextError(
            f"secondary_region {config.secondary_region} of {settings.config_path} needs the home region: "
            "-c region=REGION, or an AWS profile with a region under the CDK CLI"
        )
    if config.secondary_region and config.secondary_region == home:
        raise ContextError(f"secondary_region: {home} is the home region already; pick another one")
    _check_zone_ids(settings.hosted_zone_ids, dns_zones(config), settings.config_path)
    inputs = SynthInputs(
        settings.config_path,
        settings.placeholder_deps,
        settings.hosted_zone_ids,
        agent_trust_anchor_arn=settings.agent_trust_anchor_arn,
        agent_principal=settings.agent_principal,
        warm_steps=settings.warm_steps,
    )
    stack = DcwatchStack(
        app,
        c.stack_name(config.name),
        config=config,
        inputs=inputs,
        env=cdk.Environment(region=home) if home else None,
    )
    # One probe stack per other region the topology places vantage points in.
    for region in dict.fromkeys(v.placement.region for v in config.topology.vantage_points if v.placement.region):
        ProbeStack(
            app,
            c.probe_stack_name(config.name, region),
            config=config,
            inputs=inputs,
            home_region=str(home),
            env=cdk.Environment(region=region),
        )
    nag.check(app)
    return stack


# What the CDK CLI adds to every synth unless told otherwise: metadata naming each resource's construct and asset.
CLI_DEFAULT_CONTEXT = {"aws:cdk:enable-path-metadata": True, "aws:cdk:enable-asset-metadata": True}


def cli_context() -> dict[str, Any]:
    """The context `cdk synth` gives the app: its defaults and infra/cdk.json's (the feature flags).
    `python app.py` and the tests start from it too, so that every synth builds the template the CLI builds."""
    return {**CLI_DEFAULT_CONTEXT, **json.loads(c.CDK_JSON.read_text(encoding="utf-8")).get("context", {})}


def _placeholder_deps(node: Any) -> bool:
    """`deps=pip` (the default: the real dependency layer) or `deps=placeholder` (offline, cannot run)."""
    if node.try_get_context("bundle_deps") is not None:
        raise ContextError(
            f"bundle_deps: no longer used; the dependency layer is built by default (-c deps={c.DEPS_PIP}), "
            f"-c deps={c.DEPS_PLACEHOLDER} synthesizes the offline placeholder"
        )
    value = node.try_get_context("deps")
    choice = c.DEPS_PIP if value is None or value == "" else str(value).strip().lower()
    if choice not in (c.DEPS_PIP, c.DEPS_PLACEHOLDER):
        raise ContextError(f"deps: expected {c.DEPS_PIP} (the default) or {c.DEPS_PLACEHOLDER}, got {value!r}")
    return choice == c.DEPS_PLACEHOLDER


# A failover runs its steps one at a time: one warm environment per step function is all it uses.
MAX_WARM_STEPS = 2


def _warm_steps(value: Any) -> int:
    if value is None or value == "":
        return 0
    if not str(value).isdigit() or not 0 <= int(value) <= MAX_WARM_STEPS:
        raise ContextError(f"warm_steps: expected 0..{MAX_WARM_STEPS} provisioned environments, got {value!r}")
    return int(value)


def _region(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.match(REGION_PATTERN, value):
        raise ContextError(f"region: expected an AWS region such as eu-central-1, got {value!r}")
    return value


def _zone_ids(value: Any) -> dict[str, str]:
    """`{"zone.": "Z123", ...}`, given as JSON text on the command line or as an object in cdk.json."""
    try:
        return decode_zone_ids(value, "hosted_zone_ids")
    except ValueError as exc:
        raise ContextError(str(exc)) from None


def _check_zone_ids(zone_ids: dict[str, str], zones: list[str], config_path: Path) -> None:
    """Every zone of the config has its id: the functions change records by zone id, never by a name that a
    public and a private zone may share, and are granted exactly these zones."""
    missing = [zone for zone in zones if zone_key(zone) not in {zone_key(z) for z in zone_ids}]
    if missing:
        example = json.dumps(dict.fromkeys(missing, "Z0123456789ABC"))
        raise ContextError(
            f"hosted_zone_ids: no hosted zone id for {missing} (zones of {config_path}); give every zone's id: "
            f"-c hosted_zone_ids='{example}' (in a split-horizon setup, the id of the zone dcwatch must change)"
        )


TRUST_ANCHOR_PATTERN = r"^arn:aws[a-z-]*:rolesanywhere:[a-z0-9-]+:[0-9]{12}:trust-anchor/[0-9a-f-]{36}$"
PRINCIPAL_PATTERN = r"^([0-9]{12}|arn:aws[a-z-]*:iam::[0-9]{12}:(root|user/.+|role/.+))$"


def _trust_anchor(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.match(TRUST_ANCHOR_PATTERN, value):
        raise ContextError(
            "agent_trust_anchor_arn: expected an IAM Roles Anywhere trust anchor ARN "
            f"(arn:aws:rolesanywhere:REGION:ACCOUNT:trust-anchor/ID), got {value!r}"
        )
    return value


def _principal(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.match(PRINCIPAL_PATTERN, value):
        raise ContextError(
            f"agent_principal: expected an account id or an IAM user or role ARN (for trials), got {value!r}"
        )
    return value
