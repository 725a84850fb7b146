"""Reading the synthesized template: resources, references, the IAM statements of a role."""

from __future__ import annotations

from collections.abc import Mapping
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


def role_statements(template: Synth | Template, role_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def function_role(template: Synth | Template, function_id: str) -> str:
    return resources(template, "AWS::Lambda::Function")[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]


def function_statements(synth: Synth, key: str) -> list[dict[str, Any]]:
    return role_statements(synth, function_role(synth, synth.function_id(key)))


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def statements_with(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [s for s in statements if action in actions(s)]


def services(statements: list[dict[str, Any]]) -> set[str]:
    return {a.split(":")[0] for s in statements for a in actions(s)}
