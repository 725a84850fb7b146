"""How `make test` hands the tiers to pytest-xdist's workers (`--dist loadfile`); a plain run ignores it.

A file runs whole in one worker: the scenario matrix (one module fixture plays every scenario) and each
integration file (its module fixtures start local peers once). The longest work is handed out first, and
what each worker gets queued behind it is a short unit file, so nothing long waits behind the matrix.
(`--dist loadgroup` would keep the infrastructure tier's session synths in one worker too, but pytest-xdist
3.8 cannot rename items under pytest 9, so its groups are ignored there.)
"""

from __future__ import annotations

import pytest

MATRIX = "tests/e2e/test_scenarios.py"
ORDER = (MATRIX, "tests/e2e/", "tests/infrastructure/", "tests/integration/")
UNIT_RANK = len(ORDER)


def _file(item: pytest.Item) -> str:
    return item.nodeid.split("::")[0]


def _rank(item: pytest.Item) -> int:
    """Longest first: the matrix, the demo runs, the infrastructure synths, the integration files, the units."""
    return next((n for n, prefix in enumerate(ORDER) if _file(item).startswith(prefix)), UNIT_RANK)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = getattr(config, "workerinput", {}).get("workercount")
    if not workers:
        return
    items.sort(key=_rank)  # stable: files and tests keep their order within a rank
    # xdist hands each worker two files at first: the second of each is a unit file.
    unit_files = list(dict.fromkeys(_file(item) for item in items if _rank(item) == UNIT_RANK))[:workers]
    queued = [item for item in items if _file(item) in unit_files]
    rest = [item for item in items if _file(item) not in unit_files]
    at = _first_files(rest, workers)
    items[:] = rest[:at] + queued + rest[at:]


def _first_files(items: list[pytest.Item], count: int) -> int:
    """Where the `count`-th file ends in `items`."""
    seen: list[str] = []
    for n, item in enumerate(items):
        if _file(item) not in seen:
            if len(seen) == count:
                return n
            seen.append(_file(item))
    return len(items)
