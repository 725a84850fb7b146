"""One probe round on the event path (events, evaluator calls, queue requests, reads and writes): derived from
the round contract, from the per-result design before it, or measured by the bench."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from dcwatch.cost.assumptions import ASSUMED, Assumptions
from dcwatch.cost.prices import EVENT_CHUNK_BYTES, SQS_BATCH
from dcwatch.cost.workload import Workload


@dataclass(frozen=True)
class RoundCounts:
    """One probe round on the event path, summed over the vantage points: the one place the evaluation's
    shape enters the model. `round_counts` derives it from the round contract; the bench may replace it with
    what it measured (`from_json`)."""

    results: int
    putevents_entries: int
    event_chunks: int  # 64 KB chunks of those entries: billed by EventBridge, and by SQS on each send
    event_bytes: int
    evaluator_invocations: int
    evaluator_ms: float  # all invocations of the round together
    sqs_receive_chunks: int  # ReceiveMessage requests that carry data, in 64 KB chunks
    sqs_deletes: int  # DeleteMessageBatch requests
    dynamodb_reads: int  # requests: a warm evaluator's GetItem of a site's generation (the per-result design: none)
    dynamodb_read_units: float
    dynamodb_writes: int
    dynamodb_write_units: int
    queue: bool  # SQS FIFO between the bus and the evaluator
    basis: str

    @classmethod
    def from_json(cls, text: str, source: str) -> RoundCounts:
        """Measured figures (the keys are the field names); `basis` says where they were measured."""
        data: dict[str, Any] = json.loads(text)
        data.setdefault("queue", True)
        return cls(**{**data, "basis": f"measured ({source})"})


def _chunks(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def round_counts(workload: Workload, a: Assumptions = ASSUMED) -> RoundCounts:
    """The round design of issue 13: per vantage point and site one event per chunk of results; the
    evaluator at most once per vantage point and round (one FIFO batch). Warm (Lambda keeps the environment
    between rounds 10 s to minutes apart), it reads per site the generation of its check states, one item,
    not the states themselves (`evaluator.RoundCache`); in steady state it writes the chunk's mark and claims
    a new generation, nothing else changed. A cold start's one read of every state is not counted."""
    entries = chunks = size = invocations = receives = reads = 0
    read_units, ms = 0.0, 0.0
    for v in workload.vantages:
        mine = 0
        for _, n in v.checks_by_site:
            if n == 0:
                continue
            for k in range(math.ceil(n / a.results_per_event)):
                in_chunk = min(a.results_per_event, n - k * a.results_per_event)
                entry = a.event_envelope_bytes + in_chunk * a.result_bytes
                entries, mine, size = entries + 1, mine + _chunks(entry, EVENT_CHUNK_BYTES), size + entry
            reads += 1  # the site's generation item (under 4 KB)
            read_units += 1.0 if a.strongly_consistent else 0.5
        calls = math.ceil(sum(math.ceil(n / a.results_per_event) for _, n in v.checks_by_site) / SQS_BATCH)
        chunks, invocations, receives = chunks + mine, invocations + calls, receives + max(calls, mine)
        ms += calls * a.evaluator_base_ms + a.evaluator_result_ms * v.checks
    return RoundCounts(
        results=workload.checks,
        putevents_entries=entries,
        event_chunks=chunks,
        event_bytes=size,
        evaluator_invocations=invocations,
        evaluator_ms=ms,
        sqs_receive_chunks=receives,
        sqs_deletes=invocations,
        dynamodb_reads=reads,
        dynamodb_read_units=read_units,
        dynamodb_writes=entries + reads,  # the chunks' marks, and each site's generation claimed
        dynamodb_write_units=entries + reads,
        queue=True,
        basis="assumed: issue 13's round design, a warm evaluator",
    )


def per_result_counts(workload: Workload, a: Assumptions = ASSUMED) -> RoundCounts:
    """The design before issue 13: each result its own event, its own evaluator invocation (EventBridge
    invokes it asynchronously) and one conditional write (`record_pass`) in steady state."""
    n = workload.checks
    entry = a.event_envelope_bytes + a.result_bytes
    return RoundCounts(
        results=n,
        putevents_entries=n,
        event_chunks=n * _chunks(entry, EVENT_CHUNK_BYTES),
        event_bytes=n * entry,
        evaluator_invocations=n,
        evaluator_ms=n * a.per_result_evaluator_ms,
        sqs_receive_chunks=0,
        sqs_deletes=0,
        dynamodb_reads=0,
        dynamodb_read_units=0.0,
        dynamodb_writes=n,
        dynamodb_write_units=n,
        queue=False,
        basis="the per-result design (code before issue 13): 1 event, 1 invocation, 1 write per result",
    )
