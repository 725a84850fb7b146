"""Edge-triggered announcements: a stored condition moved by a conditional write, and the one decision
record and alert of whoever moved it. Every evaluator-side change (sites, services, vantage points,
agents, partitions) goes through these two, so each change is announced exactly once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from dcwatch.model import StoredStatus
from dcwatch.ports import AuditLog, Notifier, StatusStore
from dcwatch.subjects import fit_subject


def condition_key(kind: str, subject: str) -> str:
    """Where a condition is stored: `site/dc-a`, `service/shop@dc-a`, `vantage/aws-vpc`, `agent/dc-a`."""
    return f"{kind}/{subject}"


def part_key(site: str, service: str | None) -> str:
    """Where a part of the active site keeps its condition: one service (`service/shop@dc-a`), or, with no
    service, the site's vCenter (`vcenter/dc-a`)."""
    return condition_key("vcenter", site) if service is None else condition_key("service", f"{service}@{site}")


def part_keys(site: str, services: Iterable[str]) -> list[str]:
    """The site's vCenter and each of its services: every part the evaluator judges while the site is active."""
    return [part_key(site, None), *(part_key(site, service) for service in services)]


def flip(store: StatusStore, key: str, default: str, status: str, now: datetime) -> StoredStatus | None:
    """Move the condition under `key` to `status`; the one it replaced, or None when it already was there
    or another evaluator moved it first (that one alerts, so the alert goes out once)."""
    stored = store.condition(key, default)
    if status == stored.status or not store.change_condition(
        key, stored, StoredStatus(status, since=now, version=stored.version + 1)
    ):
        return None
    return stored


def announce(
    store: AuditLog, notifier: Notifier, audit_id: str, subject: str, message: str, record: dict[str, object]
) -> None:
    """The decision record, then the alert: both name what changed and the arithmetic behind it."""
    store.append_audit(audit_id, record)
    notifier.publish(fit_subject(subject), message)


def duration(since: datetime | None, now: datetime) -> str:
    """How long a condition lasted, as alerts say it: `2 min 5 s`."""
    if since is None:
        return "an unknown time"
    seconds = max(0, round((now - since).total_seconds()))
    minutes, s = divmod(seconds, 60)
    hours, m = divmod(minutes, 60)
    return f"{hours} h {m} min {s} s" if hours else f"{m} min {s} s" if m else f"{s} s"
