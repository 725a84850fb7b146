"""Shared test helpers: the canonical events in `events/` and the demo config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dcwatch.config import Config, load_config
from dcwatch.local.demo import DEMO_CONFIG

EVENTS = Path(__file__).resolve().parents[1] / "events"


def load_event(name: str) -> Any:
    """The parsed JSON of events/<name>, e.g. "samples/ProbeResult.json" or "failover-manual.json"."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def demo_config() -> Config:
    return load_config(DEMO_CONFIG)
