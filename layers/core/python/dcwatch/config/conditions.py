"""A small condition language for positive checks, in the spirit of Gatus.

    [STATUS] == 200
    [RESPONSE_TIME] < 500
    [BODY].status == UP
    [BODY].mirror.lag_seconds <= 30
    [BODY].members[0].state != degraded

A condition is parsed once, when the config is loaded (a bad one is a config error naming its
path), and evaluated against what a check observed. A failed condition explains itself:
`[BODY].status == UP: got DOWN`.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

PLACEHOLDERS = ("STATUS", "RESPONSE_TIME", "BODY")
_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_CONDITION = re.compile(r"^\s*\[(?P<placeholder>[A-Z_]+)\](?P<path>\S*)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<value>.*?)\s*$")
_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")
_MISSING = object()


class ConditionError(ValueError):
    """A condition that cannot be parsed; the message says what is wrong and what is expected."""


@dataclass(frozen=True)
class Observation:
    """What a check saw: status code, response time in ms, and the body text."""

    status: int | None = None
    response_time_ms: float | None = None
    body: str | None = None


@dataclass(frozen=True)
class Condition:
    text: str
    placeholder: str
    path: tuple[str | int, ...]
    op: str
    expected: str

    def evaluate(self, seen: Observation, parsed_body: Any = _MISSING) -> str | None:
        """None when the condition holds, else why not."""
        actual = self._actual(seen, parsed_body)
        if actual is _MISSING:
            return f"{self.text}: {self._where()} not found"
        expected: Any = self.expected
        if isinstance(actual, bool):
            expected = {"true": True, "false": False}.get(self.expected.lower(), self.expected)
        elif isinstance(actual, (int, float)):
            try:
                expected = float(self.expected)
            except ValueError:
                return f"{self.text}: got {actual}, which cannot be compared with {self.expected!r}"
        elif actual is None:
            expected = None if self.expected in ("null", "none", "") else self.expected
        else:
            actual = str(actual)
            if self.op not in ("==", "!="):
                try:
                    actual, expected = float(actual), float(self.expected)
                except ValueError:
                    return f"{self.text}: got {actual!r}, not a number"
        if _OPERATORS[self.op](actual, expected):
            return None
        return f"{self.text}: got {_show(actual)}"

    def _actual(self, seen: Observation, parsed_body: Any) -> Any:
        if self.placeholder == "STATUS":
            return seen.status if seen.status is not None else _MISSING
        if self.placeholder == "RESPONSE_TIME":
            return seen.response_time_ms if seen.response_time_ms is not None else _MISSING
        if not self.path:
            return seen.body if seen.body is not None else _MISSING
        value = parse_json(seen.body) if parsed_body is _MISSING else parsed_body
        for step in self.path:
            value = _step_into(value, step)
            if value is _MISSING:
                return _MISSING
        return value

    def _where(self) -> str:
        return f"[{self.placeholder}]" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.path)


def _step_into(value: Any, step: str | int) -> Any:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else _MISSING
    return value[step] if isinstance(value, Mapping) and step in value else _MISSING


def _show(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def parse_json(body: str | None) -> Any:
    try:
        return json.loads(body) if body else _MISSING
    except ValueError:
        return _MISSING


def parse_condition(text: str) -> Condition:
    match = _CONDITION.match(text)
    if not match:
        raise ConditionError(
            f"cannot read condition {text!r}: expected '[PLACEHOLDER] OP VALUE', "
            f"e.g. '[STATUS] == 200' or '[BODY].status == UP'"
        )
    placeholder, path_text, op, value = match.group("placeholder", "path", "op", "value")
    if placeholder not in PLACEHOLDERS:
        raise ConditionError(f"unknown placeholder [{placeholder}] in {text!r}; known: {', '.join(PLACEHOLDERS)}")
    if path_text and placeholder != "BODY":
        raise ConditionError(f"only [BODY] takes a path like '.status', not [{placeholder}] in {text!r}")
    path: list[str | int] = []
    consumed = 0
    for step in _STEP.finditer(path_text):
        if step.start() != consumed:
            break
        path.append(step.group(1) if step.group(1) is not None else int(step.group(2)))
        consumed = step.end()
    if consumed != len(path_text):
        raise ConditionError(f"cannot read the path {path_text!r} in {text!r}: use '.field' and '[index]' steps")
    if value == "":
        raise ConditionError(f"condition {text!r} has no value to compare with")
    if placeholder in ("STATUS", "RESPONSE_TIME") or op not in ("==", "!="):
        try:
            float(value)
        except ValueError:
            if placeholder != "BODY":
                raise ConditionError(f"[{placeholder}] compares with a number, not {value!r} in {text!r}") from None
    return Condition(text.strip(), placeholder, tuple(path), op, value)


def evaluate_all(conditions: list[Condition], seen: Observation) -> list[str]:
    """Every failed condition with its reason (the body is parsed once)."""
    parsed = parse_json(seen.body) if any(c.path for c in conditions) else _MISSING
    return [reason for c in conditions if (reason := c.evaluate(seen, parsed)) is not None]
