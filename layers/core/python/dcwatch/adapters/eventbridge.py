"""Publishing dcwatch events to the EventBridge bus."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.errors import EntriesRefused, TransientError
from dcwatch.events import (
    EVALUATOR_SOURCE,
    PROBE_ROUND,
    SITE_STATUS_CHANGED,
    ProbeResult,
    SiteStatusChanged,
    probe_rounds,
    probe_source,
)

MAX_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024
MAX_ATTEMPTS = 3
BACKOFF_BASE_S = 0.2  # waits of 0.1-0.2 s, then 0.2-0.4 s: at most 0.6 s per `put`, whatever the number of batches


def backoff_s(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """The wait before retry `attempt` (1, 2, ...): doubling, with half of it jittered so retries spread."""
    ceiling = BACKOFF_BASE_S * 2 ** (attempt - 1)
    return ceiling / 2 + rand() * ceiling / 2


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


def _error_code(exc: Exception) -> str:
    """`ThrottlingException` for an AWS error, the class name (`EndpointConnectionError`) for the rest."""
    cause = exc.__cause__ or exc
    return str(getattr(cause, "response", {}).get("Error", {}).get("Code") or type(cause).__name__)


class EventBridgePublisher:
    def __init__(self, bus_name: str, client: Any | None = None, sleep: Callable[[float], None] = time.sleep):
        self.bus_name = bus_name
        self._client = LazyClient("events", client)
        self._sleep = sleep

    def _entry(self, source: str, detail_type: str, detail: str) -> dict[str, Any]:
        return {"Source": source, "DetailType": detail_type, "Detail": detail, "EventBusName": self.bus_name}

    def put(self, entries: Sequence[dict[str, Any]], weights: Sequence[int] | None = None) -> int:
        """PutEvents in batches; what the bus refuses is sent again after a short jittered wait.

        Each attempt resends every refused entry at once, so the waits do not add up per batch. Entries
        still refused after the last attempt raise `EntriesRefused`, which counts them: never dropped silently.
        `weights`: what each entry counts for (a ProbeRound counts its results); 1 each by default.
        """
        weight = {id(entry): w for entry, w in zip(entries, weights or [1] * len(entries), strict=True)}
        pending, sent = list(entries), 0
        errors: Counter[str] = Counter()
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                self._sleep(backoff_s(attempt))
            refused: list[dict[str, Any]] = []
            errors = Counter()
            todo = batches(pending)
            for n, batch in enumerate(todo):
                try:
                    with aws_call("events:PutEvents"):
                        response = self._client().put_events(Entries=batch)
                except TransientError as exc:
                    # The call itself failed (after boto3's own retries): the rest waits for the next attempt.
                    rest = [entry for later in todo[n:] for entry in later]
                    refused += rest
                    errors[_error_code(exc)] += sum(weight[id(entry)] for entry in rest)
                    break
                for entry, answer in zip(batch, response["Entries"], strict=True):
                    if answer.get("ErrorCode"):
                        refused.append(entry)
                        errors[str(answer["ErrorCode"])] += weight[id(entry)]
                    else:
                        sent += weight[id(entry)]
            pending = refused
            if not pending:
                return sent
        raise EntriesRefused(sent, sum(weight[id(entry)] for entry in pending), errors, MAX_ATTEMPTS)

    def publish_probe_results(self, results: Sequence[ProbeResult]) -> int:
        """One ProbeRound event per vantage point, site and chunk; returns (or, refused, counts) results."""
        rounds = probe_rounds(results)
        entries = [self._entry(probe_source(r.vantage), PROBE_ROUND, r.model_dump_json(by_alias=True)) for r in rounds]
        return self.put(entries, [len(r.results) for r in rounds])

    def publish_site_status(self, event: SiteStatusChanged) -> None:
        self.put([self._entry(EVALUATOR_SOURCE, SITE_STATUS_CHANGED, event.model_dump_json(by_alias=True))])
