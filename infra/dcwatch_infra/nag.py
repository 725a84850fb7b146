"""cdk-nag's AWS Solutions checks on every synth, and the one way to accept a finding: with its reason.

cdk-nag 3 is a CDK policy-validation plugin: a finding not acknowledged fails `app.synth()` (and so
`make synth`, `cdk deploy` and the infrastructure tests), and `validation-report.json` in the cloud
assembly lists it. Acknowledgements are written into the template's metadata (`cdk_nag`), so the
reasons travel with the template.
"""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Stack, Token, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"
REPORT = "validation-report.json"

# Reasons gathered per app, construct and finding: CDK keeps only the first acknowledgement of a finding on a
# construct, and one role may need the same finding accepted for several grants (X-Ray and Route 53, say).
_pending: dict[int, dict[tuple[str, str], tuple[IConstruct, list[str]]]] = {}


def acknowledge(construct: IConstruct, finding: str, reason: str) -> None:
    """Accept one finding (`IAM5[Resource::*]`, `L1`, ...) on the construct and everything below it."""
    found = _pending.setdefault(id(construct.node.root), {})
    _, reasons = found.setdefault((construct.node.path, finding), (construct, []))
    if reason not in reasons:
        reasons.append(reason)


def partition(scope: IConstruct) -> str:
    """The stack's partition as finding ids spell it: a literal once the region is known (CDK's
    `enablePartitionLiterals`), else the pseudo parameter."""
    value = Stack.of(scope).partition
    return "<AWS::Partition>" if Token.is_unresolved(value) else value


def check(app: App) -> None:
    """Acknowledge what was accepted in `app`, then have AwsSolutionsChecks judge it at synth."""
    for (_, finding), (construct, reasons) in _pending.pop(id(app), {}).items():
        Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}-{finding}", reason="; ".join(reasons)))
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True, write_suppressions_to_cloud_formation=True))
