"""Synthesize the dcwatch stack: `python app.py [-c key=value ...]` or `cdk synth [-c key=value ...]`.

Context: `config=PATH` (default: the demo config), `deps=placeholder` (an offline stand-in for the
dependency layer that deploys but cannot run, with a warning; by default pip builds the real layer from
PyPI), `hosted_zone_ids='{"zone.": "ZONEID"}'` (required: the id of every zone of the config; the functions
change records by these ids, and only their steps' records in these zones),
`region=REGION` (the home region; needed with the config's `secondary_region` outside the CDK CLI),
`agent_trust_anchor_arn=ARN` (the site agents' roles trust this IAM Roles Anywhere trust anchor) and/or
`agent_principal=ACCOUNT|ARN` (trials): with `fencing.agents` in the config and neither, no agent role and a warning.
`warm_steps=N` (0..2, default 0): N provisioned environments of each workflow step function, which the
workflow invokes through their alias `warm` (a standing cost: see docs/benchmark.md, Cold starts).
cdk.json's context (the feature flags) applies with or without the CLI. Writes to infra/cdk.out unless the
CDK CLI chooses the output directory. cdk-nag's AWS Solutions checks run on every synth: an
unacknowledged finding fails it (exit 3), listed in validation-report.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# jsii takes the Node major versions whose end-of-life banner to silence (a list, not a flag).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "18,20")

import aws_cdk as cdk  # noqa: E402 - after the environment it reads at import

from dcwatch.config import ConfigError  # noqa: E402
from dcwatch_infra.build import ContextError, SynthSettings, build, cli_context  # noqa: E402
from dcwatch_infra.layers import PLACEHOLDER_WARNING  # noqa: E402
from dcwatch_infra.nag import REPORT  # noqa: E402

OUTDIR = Path(__file__).resolve().with_name("cdk.out")
USAGE = "usage: python app.py [-c key=value ...]"


def parse_context(argv: list[str]) -> dict[str, str]:
    """`-c key=value` pairs, as the CDK CLI takes them, for runs without the CLI."""
    context: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if arg not in ("-c", "--context"):
            raise SystemExit(f"{USAGE}\nunexpected argument {arg!r}")
        key, sep, value = next(args, "").partition("=")
        if not key or not sep:
            raise SystemExit(f"{USAGE}\n{arg} needs key=value")
        context[key] = value
    return context


def main(argv: list[str]) -> int:
    # The CDK CLI passes context and the output directory through the environment, and reports warnings.
    under_cli = bool(os.environ.get("CDK_OUTDIR"))
    context = parse_context(argv) if under_cli else {**cli_context(), **parse_context(argv)}
    app = cdk.App(outdir=None if under_cli else str(OUTDIR), context=context)
    try:
        build(app)
    except (ConfigError, ContextError) as exc:
        print(f"dcwatch: cannot synthesize the stack:\n{exc}", file=sys.stderr)
        return 2
    try:
        assembly = app.synth()
    except RuntimeError as exc:
        if "ValidationFailed" not in str(exc):
            raise
        report = Path(app.outdir) / REPORT
        print(f"dcwatch: cdk-nag findings without an acknowledgement (above, and in {report})", file=sys.stderr)
        return 3
    for stack in [] if under_cli else assembly.stacks:
        for message in stack.messages:
            print(f"{message.level.value}: {message.id}: {message.entry.data}", file=sys.stderr)
    if SynthSettings.from_context(app.node).placeholder_deps:
        print(f"dcwatch: WARNING: {PLACEHOLDER_WARNING}", file=sys.stderr)
    print(
        f"dcwatch: synthesized {', '.join(s.stack_name for s in assembly.stacks)} to {assembly.directory}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
