"""The audit trail is append-only by policy: the table's own resource policy denies changing or deleting an item
to every principal, the stack's roles, the site agents' and any other of the account alike.

Writes through TransactWriteItems are authorized per contained action (Put: PutItem, Update: UpdateItem, Delete:
DeleteItem on that item's table), so a transaction that appends an audit record and updates the state table still
passes, while one that updates or deletes an audit record is refused. BatchWriteItem is denied whole (its
DeleteRequest is a delete); PartiQL has actions of its own. PutItem stays allowed to those granted it: IAM cannot
tell an append from an overwrite, which the adapter's condition (`attribute_not_exists`) refuses instead.
"""

from __future__ import annotations

from aws_cdk import aws_iam as iam

FORBIDDEN_ACTIONS = (
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:PartiQLUpdate",
    "dynamodb:PartiQLDelete",
)


def append_only_policy() -> iam.PolicyDocument:
    """The resource policy of a table whose items nobody may change or delete ("*": the table it is attached to;
    a table's policy cannot name its own ARN, which CloudFormation only knows once the table exists)."""
    return iam.PolicyDocument(
        statements=[
            iam.PolicyStatement(
                sid="AppendOnly",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=list(FORBIDDEN_ACTIONS),
                resources=["*"],
            )
        ]
    )
