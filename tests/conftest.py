"""How `make test` spreads the tiers over pytest-xdist's workers (`--dist loadgroup`); a plain run ignores it.

A group runs whole in one worker: the scenario matrix (one module fixture plays every scenario), the
infrastructure tier (its synths are per session) and each integration file (its module fixtures start
local peers once). Unit and demo tests go one by one. The longest work is handed out first, and the
work each worker gets behind it is a unit test, so nothing long waits behind the matrix.
"""

from __future__ import annotations

import pytest

MATRIX = "tests/e2e/test_scenarios.py"
ORDER = (MATRIX, "tests/e2e/", "tests/infrastructure/", "tests/integration/")
UNIT_RANK = len(ORDER)


def _group(item: pytest.Item) -> str | None:
    path = item.nodeid.split("::")[0]
    if path == MATRIX:
        return "matrix"
    if path.startswith("tests/infrastructure/"):
        return "infrastructure"
    if path.startswith("tests/integration/"):
        return path
    return None


def _rank(item: pytest.Item) -> int:
    """Longest first: the matrix, the demo runs, the infrastructure synths, the integration files, the units."""
    path = item.nodeid.split("::")[0]
    return next((n for n, prefix in enumerate(ORDER) if path.startswith(prefix)), UNIT_RANK)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = getattr(config, "workerinput", {}).get("workercount")
    if not workers or config.getoption("dist", "no") != "loadgroup":
        return
    for item in items:
        group = _group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=_rank)  # stable: files and tests keep their order within a rank
    # xdist hands each worker two units at first: the second of each is a unit test.
    first_unit = next((n for n, item in enumerate(items) if _rank(item) == UNIT_RANK), len(items))
    units = items[first_unit : first_unit + workers]
    del items[first_unit : first_unit + workers]
    at = _first_scopes(items, workers)
    items[at:at] = units


def _first_scopes(items: list[pytest.Item], count: int) -> int:
    """Where the `count`-th work unit (a group, or a test outside any group) ends in `items`."""
    seen: list[str] = []
    for n, item in enumerate(items):
        scope = _group(item) or item.nodeid
        if scope not in seen:
            if len(seen) == count:
                return n
            seen.append(scope)
    return len(items)
