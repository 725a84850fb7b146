"""Reading the synthesized template: resources, references, what a role is granted."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk.assertions import Template

from tests.infrastructure.synth import Synth


def resources(template: Synth | Template, type_: str) -> Mapping[str, Mapping[str, Any]]:
    return (template.template if isinstance(template, Synth) else template).find_resources(type_)


def refs(value: Any) -> set[str]:
    """Logical ids referenced by GetAtt/Ref anywhere inside a template value."""
    if isinstance(value, dict):
        if "Fn::GetAtt" in value:
            return {value["Fn::GetAtt"][0]}
        if "Ref" in value:
            return {value["Ref"]}
        return set().union(*(refs(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(refs(v) for v in value)) if value else set()
    return set()


def role_policies(template: Synth | Template, role_id: str) -> dict[str, list[dict[str, Any]]]:
    """Logical id -> statements of every IAM policy attached to the role."""
    return {
        policy_id: policy["Properties"]["PolicyDocument"]["Statement"]
        for policy_id, policy in resources(template, "AWS::IAM::Policy").items()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    }


def function_role(template: Synth | Template, function_id: str) -> str:
    return resources(template, "AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]


@dataclass(frozen=True)
class Grant:
    """One effective permission: an action on a resource, under a condition (None: unconditional)."""

    action: str
    resource: Any
    condition: Any = None

    def __hash__(self) -> int:
        return hash(json.dumps([self.action, self.resource, self.condition], sort_keys=True))


def grants(template: Synth | Template, role_id: str) -> list[Grant]:
    """Everything the role's policies allow, one grant per action and resource, in template order: what a
    role may do, however CDK merged its statements (`@aws-cdk/aws-iam:minimizePolicies`)."""
    granted = (_grants(statements) for statements in role_policies(template, role_id).values())
    return list(dict.fromkeys(grant for policy in granted for grant in policy))


def policies_granting(template: Synth | Template, role_id: str, action: str) -> set[str]:
    """Logical ids of the role's policies that allow `action` (on anything)."""
    return {
        policy_id
        for policy_id, statements in role_policies(template, role_id).items()
        if resources_for(_grants(statements), action)
    }


def function_grants(synth: Synth, key: str) -> list[Grant]:
    return grants(synth, function_role(synth, synth.function_id(key)))


def statement_grants(document: Mapping[str, Any]) -> list[Grant]:
    """What a policy document allows (a managed policy's, say), one grant per action and resource."""
    return _grants(document["Statement"])


def resources_for(granted: Iterable[Grant], action: str) -> list[Any]:
    """The resources `action` is allowed on."""
    return [grant.resource for grant in granted if grant.action == action]


def allowed_on(granted: Iterable[Grant], logical_id: str) -> set[str]:
    """The actions allowed on resources that reference `logical_id` (a table, a topic, a state machine ...)."""
    return {grant.action for grant in granted if logical_id in refs(grant.resource)}


def actions_of(granted: Iterable[Grant]) -> set[str]:
    return {grant.action for grant in granted}


def services_of(granted: Iterable[Grant]) -> set[str]:
    return {grant.action.split(":")[0] for grant in granted}


def _grants(statements: list[dict[str, Any]]) -> list[Grant]:
    granted = []
    for statement in statements:
        assert statement["Effect"] == "Allow" and not {"NotAction", "NotResource"} & set(statement), statement
        granted += [
            Grant(action, resource, statement.get("Condition"))
            for action in _listed(statement["Action"])
            for resource in _listed(statement["Resource"])
        ]
    return granted


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(template: Synth | Template) -> Iterable[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) of every role of the template: its inline policies and the policies attached."""
    for role_id, role in resources(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            yield from ((role_id, st) for st in _listed(policy["PolicyDocument"]["Statement"]))
        for statements in role_policies(template, role_id).values():
            yield from ((role_id, st) for st in statements)
