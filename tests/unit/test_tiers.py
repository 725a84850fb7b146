"""Test tiers run alone (`make unit|integration|infra|e2e`, or `pytest -m <tier>`): every test file of a tier's
folder carries that tier's marker, and `--strict-markers` refuses a marker pyproject.toml does not declare."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
PYPROJECT = TESTS.parent / "pyproject.toml"
MARKER_OF_FOLDER = {"integration": "integration", "e2e": "e2e", "infrastructure": "infrastructure"}


def declared_marker(path: Path) -> str | None:
    """The `pytestmark = pytest.mark.<name>` of a test module, if it has one."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets):
            value = node.value
            if isinstance(value, ast.Attribute):
                return value.attr
    return None


@pytest.mark.parametrize("folder", sorted(MARKER_OF_FOLDER))
def test_every_test_file_of_a_tier_carries_its_marker(folder):
    files = sorted((TESTS / folder).glob("test_*.py"))
    assert files, folder
    assert {f.name: declared_marker(f) for f in files} == {f.name: MARKER_OF_FOLDER[folder] for f in files}


def test_markers_are_strict_and_every_tier_marker_is_declared():
    options = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in options["addopts"].split()
    declared = {line.split(":")[0] for line in options["markers"]}
    assert set(MARKER_OF_FOLDER.values()) <= declared
