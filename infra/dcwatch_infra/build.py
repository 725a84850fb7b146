"""From CDK context to the dcwatch stack: what `app.py` runs and what the infrastructure tests build."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aws_cdk as cdk

from dcwatch.config import load_config
from dcwatch_infra import constants as c
from dcwatch_infra.stack import DcwatchStack


class ContextError(Exception):
    """A CDK context value (`-c key=value`) that cannot be used."""


@dataclass(frozen=True)
class SynthSettings:
    """The synth's inputs from CDK context: `config`, `bundle_deps`, `hosted_zone_ids`."""

    config_path: Path = c.DEMO_CONFIG
    bundle_deps: bool = False
    hosted_zone_ids: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_context(cls, node: Any) -> SynthSettings:
        config = node.try_get_context("config")
        return cls(
            config_path=Path(config) if config else c.DEMO_CONFIG,
            bundle_deps=_flag("bundle_deps", node.try_get_context("bundle_deps")),
            hosted_zone_ids=_zone_ids(node.try_get_context("hosted_zone_ids")),
        )


def build(app: cdk.App) -> DcwatchStack:
    """The stack `dcwatch-<name>` for the config named in the app's context.

    Raises `dcwatch.config.ConfigError` (naming the file and every bad field) or `ContextError`.
    """
    settings = SynthSettings.from_context(app.node)
    config = load_config(settings.config_path)
    missing = sorted({s.dns.zone for s in config.services} - set(settings.hosted_zone_ids))
    if settings.hosted_zone_ids and missing:
        raise ContextError(f"hosted_zone_ids: no hosted zone id for {missing} (zones of {settings.config_path})")
    return DcwatchStack(
        app,
        c.stack_name(config.name),
        config=config,
        config_path=settings.config_path,
        bundle_deps=settings.bundle_deps,
        hosted_zone_ids=settings.hosted_zone_ids,
    )


def _flag(key: str, value: Any) -> bool:
    if value is None or isinstance(value, bool):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no", ""):
        return False
    raise ContextError(f"{key}: expected true or false, got {value!r}")


def _zone_ids(value: Any) -> dict[str, str]:
    """`{"zone.": "Z123", ...}`, given as JSON text on the command line or as an object in cdk.json."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ContextError(f"hosted_zone_ids: not valid JSON ({exc}): {value!r}") from None
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ContextError(f'hosted_zone_ids: expected {{"zone.": "hosted zone id", ...}}, got {value!r}')
    return {(zone if zone.endswith(".") else zone + "."): zone_id.split("/")[-1] for zone, zone_id in value.items()}
