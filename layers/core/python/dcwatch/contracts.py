"""The JSON Schemas of dcwatch's contracts, generated from the models so they cannot drift.

`events/schemas/` holds the committed copies (`make schemas` rewrites them); a test fails when a
model changes without its schema.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dcwatch.agent.report import SiteAgentReport
from dcwatch.control import ControlRequest
from dcwatch.events import ProbeRound, SiteStatusChanged
from dcwatch.recovery.executions import ExecutionStatusChange
from dcwatch.recovery.request import REQUESTS, FailoverRequest

# FailoverRequest is the workflow input in general (any mode); each mode's own schema narrows it.
CONTRACTS: dict[str, type[BaseModel]] = {
    "ProbeRound": ProbeRound,  # one vantage point's round of one site (or a chunk of it): its results
    "SiteStatusChanged": SiteStatusChanged,
    "FailoverRequest": FailoverRequest,
    **REQUESTS,
    "ControlRequest": ControlRequest,  # the control function's input (Lambda console, Test tab)
    # AWS's event, not ours: the fields ExecutionEnded reads (others are ignored, not refused).
    "ExecutionStatusChange": ExecutionStatusChange,
    "SiteAgentReport": SiteAgentReport,  # a site agent's view from inside its site, with each renewal
}


def schema(name: str) -> dict[str, Any]:
    generated = CONTRACTS[name].model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"dcwatch/{name}", **generated}


def write_schemas(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in CONTRACTS:
        path = directory / f"{name}.json"
        path.write_text(json.dumps(schema(name), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "events/schemas")):
        print(path)
