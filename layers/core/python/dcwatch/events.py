"""Events on the dcwatch bus: the contract between probe, evaluator, workflow and operators.

Each detail-type has a JSON Schema and a sample in `events/`; the tests hold models, schemas and
samples together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Each vantage point speaks with a source of its own (`dcwatch.probe.<vantage>`): the bus policy lets only
# that vantage point's probe role put it, and the evaluator refuses a round whose vantage is not its source's.
PROBE_SOURCE_PREFIX = "dcwatch.probe"
EVALUATOR_SOURCE = "dcwatch.detection.evaluator"
PROBE_RESULT = "ProbeResult"
PROBE_ROUND = "ProbeRound"
# A ProbeRound event holds at most this many results, and this many bytes of them: PutEvents takes 256 KB per
# entry. A result is ~250 bytes, so 1,000 checks of a site from one vantage point make 2 or 3 events.
ROUND_CHUNK = 500
ROUND_BYTES = 200_000
SITE_STATUS_CHANGED = "SiteStatusChanged"
# What the evaluator accepts as live: observed at most this long ago (the probe-rounds queue keeps a message
# this long too), and at most this far ahead of its own clock. Anything else is refused, and logged.
RESULT_MAX_AGE_S = 3600
CLOCK_SKEW_S = 30
# PutEvents takes at most 256 KB per entry: anything larger did not come from the bus.
EVENT_MAX_BYTES = 256 * 1024
# EventBridge adds this field to every event it replays from an archive: never judged as live.
REPLAY_FIELD = "replay-name"

SiteStatus = Literal["UP", "DOWN"]


def probe_source(vantage: str) -> str:
    return f"{PROBE_SOURCE_PREFIX}.{vantage}"


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


class ProbeResult(_Event):
    """One positive check, run once, from one vantage point."""

    site: str
    check: str
    service: str | None = Field(default=None, description="None for site infrastructure (vCenter)")
    kind: Literal["http", "tls", "tcp", "dns", "vcenter"]
    critical: bool
    ok: bool
    reason: str = Field(default="", description="why it failed, short: 'status 503', 'timeout after 1.0 s'")
    latency_ms: float = Field(alias="latencyMs", ge=0)
    observed_at: AwareDatetime = Field(alias="observedAt")
    vantage: str
    round_id: str = Field(alias="roundId")


class ProbeRound(_Event):
    """One vantage point's round of one site, or one chunk of it: the unit the evaluator judges.

    A round of more than `ROUND_CHUNK` results comes as `chunks` events numbered from 0, so the evaluator
    knows when it has the whole round. `startedAt` is the earliest observation in the round (every result
    is at least that recent); a chunk already judged (same vantage, site and round, or an older round) is
    dropped as a duplicate or a late delivery.
    """

    vantage: str
    site: str
    round_id: str = Field(alias="roundId")
    started_at: AwareDatetime = Field(alias="startedAt")
    chunk: int = Field(default=0, ge=0)
    chunks: int = Field(default=1, ge=1)
    results: tuple[ProbeResult, ...] = Field(min_length=1, max_length=ROUND_CHUNK)

    @model_validator(mode="after")
    def _one_round(self) -> ProbeRound:
        if self.chunk >= self.chunks:
            raise ValueError(f"chunk {self.chunk} of {self.chunks}: chunks are numbered from 0")
        strays = [r.check for r in self.results if (r.site, r.vantage) != (self.site, self.vantage)]
        if strays:
            raise ValueError(f"results of another site or vantage point than {self.site}/{self.vantage}: {strays}")
        early = [r.check for r in self.results if r.observed_at < self.started_at]
        if early:
            raise ValueError(f"results observed before the round's startedAt {self.started_at.isoformat()}: {early}")
        return self


def _chunks(results: list[ProbeResult], size: int, max_bytes: int) -> list[list[ProbeResult]]:
    parts: list[list[ProbeResult]] = [[]]
    used = 0
    for result in results:
        length = len(result.model_dump_json(by_alias=True))
        if parts[-1] and (len(parts[-1]) >= size or used + length > max_bytes):
            parts.append([])
            used = 0
        parts[-1].append(result)
        used += length
    return parts


def probe_rounds(
    results: Sequence[ProbeResult], chunk_size: int = ROUND_CHUNK, max_bytes: int = ROUND_BYTES
) -> list[ProbeRound]:
    """A probe round's results as ProbeRound events: one per vantage point and site, chunked by count and size."""
    groups: dict[tuple[str, str], list[ProbeResult]] = {}
    for result in results:
        groups.setdefault((result.vantage, result.site), []).append(result)
    rounds = []
    for (vantage, site), group in sorted(groups.items()):
        group.sort(key=lambda r: r.check)
        parts = _chunks(group, chunk_size, max_bytes)
        started: datetime = min(r.observed_at for r in group)
        round_id = group[0].round_id
        for n, part in enumerate(parts):
            rounds.append(
                ProbeRound(
                    vantage=vantage,
                    site=site,
                    round_id=round_id,
                    started_at=started,
                    chunk=n,
                    chunks=len(parts),
                    results=tuple(part),
                )
            )
    return rounds


class SiteStatusChanged(_Event):
    """A site changed status; carries the evidence so the decision explains itself."""

    site: str
    status: SiteStatus
    previous: SiteStatus
    role: Literal["active", "standby"]
    changed_at: AwareDatetime = Field(alias="changedAt", description="when the deciding probe result was observed")
    decided_at: AwareDatetime = Field(alias="decidedAt", description="when the evaluator decided")
    failed_checks: list[str] = Field(alias="failedChecks")
    threshold: int
    incident_id: str | None = Field(default=None, alias="incidentId")
    action: str = Field(description="what the evaluator did about it, and why")
    explanation: str = Field(
        default="",
        description="the arithmetic: which checks failed from which vantage points, against which thresholds",
    )
