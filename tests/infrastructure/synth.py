"""Synthesizing the stacks for tests: exactly as `infra/app.py` does, from CDK context (cdk.json's feature flags
first), cdk-nag included."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk  # noqa: E402 - after the environment jsii reads at start
from aws_cdk.assertions import Template  # noqa: E402

from dcwatch.config import Config, load_config  # noqa: E402
from dcwatch.zones import dns_zones  # noqa: E402
from dcwatch_infra import constants  # noqa: E402
from dcwatch_infra.build import build, cli_context  # noqa: E402
from dcwatch_infra.nag import REPORT  # noqa: E402
from dcwatch_infra.probe_stack import ProbeStack  # noqa: E402
from dcwatch_infra.stack import DcwatchStack  # noqa: E402

# The offline stand-in for the dependency layer: every synth of the tests but `deployable` (pip takes ~12 s).
PLACEHOLDER = {"deps": constants.DEPS_PLACEHOLDER}


class NagFindings(AssertionError):
    """cdk-nag refused the synth; the message lists every finding without an acknowledgement."""


@dataclass(frozen=True)
class Synth:
    stack: DcwatchStack
    template: Template
    config: Config
    config_path: Path
    outdir: Path
    probe_stack: ProbeStack | None = None
    probe_template: Template | None = None

    def logical_id(self, construct: object) -> str:
        return self.stack.get_logical_id(construct.node.default_child)  # type: ignore[attr-defined]

    def function_id(self, key: str) -> str:
        return self.logical_id(self.stack.functions[key])

    def asset(self, s3_key: str) -> Path:
        """The staged asset behind an S3 key of the template (`<hash>.zip` or `<hash>.json`)."""
        stem, _, ext = s3_key.partition(".")
        return self.outdir / (f"asset.{stem}" if ext == "zip" else f"asset.{s3_key}")

    def template_files(self) -> list[Path]:
        return sorted(self.outdir.glob("*.template.json"))


def zone_ids_context(config_path: Path) -> str:
    """`-c hosted_zone_ids` for every zone of the config: a made-up id per zone, as a deployment gives the real ones."""
    zones = dns_zones(load_config(config_path))
    return json.dumps({zone: f"Z{index:013d}" for index, zone in enumerate(zones, start=1)})


def synthesize(outdir: Path, **context: str) -> Synth:
    """The stacks exactly as `infra/app.py` builds them, from CDK context; NagFindings if cdk-nag objects. Without
    `hosted_zone_ids` in `context`, every zone of the config gets one (`zone_ids_context`): a synth needs them."""
    config_path = Path(context.get("config") or constants.DEMO_CONFIG)
    context = {"hosted_zone_ids": zone_ids_context(config_path), **context}
    app = cdk.App(outdir=str(outdir), context={**cli_context(), **context})
    stack = build(app)
    try:
        assembly = app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        raise NagFindings("\n".join(findings(outdir))) from None
    probe_stack = next((s for s in app.node.children if isinstance(s, ProbeStack)), None)

    def template(s: cdk.Stack) -> Template:
        return Template.from_json(assembly.get_stack_by_name(s.stack_name).template)

    return Synth(
        stack,
        template(stack),
        load_config(config_path),
        config_path,
        outdir,
        probe_stack,
        template(probe_stack) if probe_stack else None,
    )


def offline_environment() -> dict[str, str]:
    """This process's environment where any download or AWS call fails fast: no proxy, index, profile or
    instance metadata to reach, no AWS credentials nor account or region."""
    dead = "http://127.0.0.1:9"  # nothing listens
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("AWS_") and key not in ("CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION")
    }
    return env | {
        "HTTP_PROXY": dead,
        "HTTPS_PROXY": dead,
        "PIP_INDEX_URL": dead,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


def findings(outdir: Path) -> list[str]:
    """`rule at construct path` for every violation of a failed plugin in the synth's validation report.

    Only failed plugins count: the report also lists the construct annotations (warnings such as the
    placeholder's) under a plugin that succeeded."""
    report = outdir / REPORT
    if not report.exists():
        return []
    return [
        f"{violation['ruleName']} at {construct['constructPath']}"
        for plugin in json.loads(report.read_text(encoding="utf-8"))["pluginReports"]
        if plugin.get("conclusion") == "failure"
        for violation in plugin.get("violations", [])
        for construct in violation["violatingConstructs"]
    ]
