"""Which audit records a report is made of: an incident holds the evaluator's decisions, the operators' answers
and one record per recovery execution; a recovery's report needs the last of those, with the detection that
started it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

RECOVERY_OUTCOMES = frozenset({"succeeded", "failed", "drill-passed", "dry-run", "notify-failed"})


def is_recovery(record: dict[str, Any]) -> bool:
    """A record the workflow wrote at its end (`recovery.messages.audit_record`): it carries the timeline."""
    return record.get("outcome") in RECOVERY_OUTCOMES and isinstance(record.get("timeline"), list)


def recovery_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The incident's latest recovery record, with `detection` added when the evaluator's DOWN decision is among
    the records: {since: the first failed probe of the streak (or the round that decided), at: the decision}.
    None when no execution of the incident recorded its end."""
    recoveries = sorted((r for r in records if is_recovery(r)), key=lambda r: str(r.get("finishedAt", "")))
    if not recoveries:
        return None
    return with_detection(recoveries[-1], records)


def with_detection(record: Mapping[str, Any], records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """A disaster's recovery record with the detection that started it, when its incident's DOWN decision is among
    `records`: {since: the first failed probe of the streak (or the round that decided), at: the decision}."""
    chosen = dict(record)
    down = next((r for r in records if r.get("kind") == "site" and r.get("status") == "DOWN"), None)
    if down is not None and chosen.get("mode") == "disaster" and down.get("decidedAt"):
        since = down.get("failingSince") or down.get("changedAt") or down["decidedAt"]
        chosen["detection"] = {"site": down.get("site"), "since": since, "at": down["decidedAt"]}
    return chosen


def drill_records(records: list[dict[str, Any]], last: int) -> list[dict[str, Any]]:
    """The last `last` drills' recovery records (dry runs left out: they prove nothing), oldest first."""
    drills = [r for r in records if is_recovery(r) and r.get("mode") == "drill" and r.get("outcome") != "dry-run"]
    return sorted(drills, key=lambda r: str(r.get("startedAt", "")))[-last:]
