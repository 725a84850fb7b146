"""Synthesizing the stack for tests: exactly as `infra/app.py` does, from CDK context."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk  # noqa: E402 - after the environment jsii reads at start
from aws_cdk.assertions import Template  # noqa: E402

from dcwatch.config import Config, load_config  # noqa: E402
from dcwatch_infra import constants  # noqa: E402
from dcwatch_infra.build import build  # noqa: E402
from dcwatch_infra.stack import DcwatchStack  # noqa: E402


@dataclass(frozen=True)
class Synth:
    stack: DcwatchStack
    template: Template
    config: Config
    config_path: Path
    outdir: Path

    def logical_id(self, construct: object) -> str:
        return self.stack.get_logical_id(construct.node.default_child)  # type: ignore[attr-defined]

    def function_id(self, key: str) -> str:
        return self.logical_id(self.stack.functions[key])

    def asset(self, s3_key: str) -> Path:
        """The staged asset behind an S3 key of the template (`<hash>.zip` or `<hash>.json`)."""
        stem, _, ext = s3_key.partition(".")
        return self.outdir / (f"asset.{stem}" if ext == "zip" else f"asset.{s3_key}")


def synthesize(outdir: Path, **context: str) -> Synth:
    """The stack exactly as `infra/app.py` builds it, from CDK context."""
    app = cdk.App(outdir=str(outdir), context=context)
    stack = build(app)
    config_path = Path(context.get("config") or constants.DEMO_CONFIG)
    return Synth(stack, Template.from_stack(stack), load_config(config_path), config_path, outdir)
