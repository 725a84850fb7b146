"""Publishing dcwatch events to the EventBridge bus."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import TransientError
from dcwatch.events import (
    EVALUATOR_SOURCE,
    PROBE_RESULT,
    PROBE_SOURCE,
    SITE_STATUS_CHANGED,
    ProbeResult,
    SiteStatusChanged,
)

MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_ATTEMPTS = 3


def batches(entries: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split into PutEvents calls of at most 10 entries and 256 KB."""
    out: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for entry in entries:
        entry_size = len(json.dumps(entry))
        if current and (len(current) == MAX_ENTRIES or size + entry_size > MAX_BATCH_BYTES):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry_size
    if current:
        out.append(current)
    return out


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: Any | None = None):
        self.bus_name = bus_name
        self._client = LazyClient("events", client)

    def _entry(self, source: str, detail_type: str, detail: str) -> dict[str, Any]:
        return {"Source": source, "DetailType": detail_type, "Detail": detail, "EventBusName": self.bus_name}

    def put(self, entries: Sequence[dict[str, Any]]) -> int:
        """PutEvents in batches; entries the bus refused are sent again, then reported, never dropped."""
        sent = 0
        for batch in batches(entries):
            pending = batch
            for _ in range(MAX_ATTEMPTS):
                with aws_call("events:PutEvents"):
                    response = self._client().put_events(Entries=pending)
                failed = [e for e, r in zip(pending, response["Entries"], strict=True) if r.get("ErrorCode")]
                sent += len(pending) - len(failed)
                pending = failed
                if not pending:
                    break
            if pending:
                raise TransientError(f"events:PutEvents refused {len(pending)} entries after {MAX_ATTEMPTS} attempts")
        return sent

    def publish_probe_results(self, results: Sequence[ProbeResult]) -> int:
        return self.put([self._entry(PROBE_SOURCE, PROBE_RESULT, r.model_dump_json(by_alias=True)) for r in results])

    def publish_site_status(self, event: SiteStatusChanged) -> None:
        self.put([self._entry(EVALUATOR_SOURCE, SITE_STATUS_CHANGED, event.model_dump_json(by_alias=True))])
