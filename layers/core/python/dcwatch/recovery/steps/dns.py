"""DNS: lower the TTL before a planned move, switch the records, and wait until Route 53 is INSYNC and
answers with the standby's values."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial

from dcwatch.errors import DnsTimeout
from dcwatch.ports import Dns, Once
from dcwatch.recovery.state import Clock, WorkflowState, run_now, utcnow
from dcwatch.recovery.waits import Polled, Sleep, wait_for

DNS_POLL_S = 1.0  # Route 53's change status, asked again inside CheckDns (GetChange allows 5 requests/s)


def switch_dns(
    state: WorkflowState, dns: Dns, timeout_s: int, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    records = [s for r in state.plan.records for s in r.record_sets()]
    started = clock()
    state.progress.dns_changes = once(state.key("switch-dns"), lambda: dns.upsert(records))
    state.progress.dns_started_at = started
    state.progress.dns_deadline = started + timedelta(seconds=timeout_s)
    state.progress.dns_in_sync = False
    names = ", ".join(r.describe() for r in state.plan.records)
    return state.note("SwitchDns", f"UPSERT {names}", clock, started)


def _look_at_dns(state: WorkflowState, dns: Dns, clock: Clock) -> bool:
    """Route 53 reports the changes INSYNC and answers every name with the standby's values; past the
    deadline, DnsTimeout says which of the two is missing."""
    progress = state.progress
    late = progress.dns_deadline is not None and clock() > progress.dns_deadline
    if not dns.in_sync(progress.dns_changes):
        if late:
            raise DnsTimeout(f"Route 53 changes not INSYNC before the deadline: {progress.dns_changes}")
        return False
    wrong = {}
    for record in state.plan.records:
        answers = dns.answers(record.zone, record.name, record.type)
        if sorted(answers) != sorted(record.values):
            wrong[record.name] = answers
    if wrong and late:
        raise DnsTimeout(
            "Route 53 changes INSYNC but the answers differ before the deadline: "
            + "; ".join(f"{name} answers {', '.join(got) or 'nothing'}" for name, got in sorted(wrong.items()))
        )
    return not wrong


def check_dns(
    state: WorkflowState,
    dns: Dns,
    clock: Clock = utcnow,
    *,
    wait_until: datetime | None = None,
    sleep: Sleep = time.sleep,
) -> WorkflowState:
    """Done when Route 53 reports the changes INSYNC and answers every name with the standby's values;
    until `wait_until` (None: one look) the step polls that every DNS_POLL_S inside."""
    progress = state.progress
    until = wait_until or clock()
    if progress.dns_deadline:
        until = min(until, progress.dns_deadline)
    if not wait_for(Polled(partial(_look_at_dns, state, dns, clock), DNS_POLL_S, sleep), bool, until, clock):
        return state
    progress.dns_in_sync = True
    answered = ", ".join(f"{r.name} answers {'/'.join(r.values)}" for r in state.plan.records)
    return state.note(
        "CheckDns",
        f"Route 53 changes INSYNC ({', '.join(progress.dns_changes)}); verified: {answered}",
        clock,
        progress.dns_started_at,
    )


def lower_ttl(
    state: WorkflowState, dns: Dns, ttl_s: int, clock: Clock = utcnow, *, once: Once = run_now
) -> WorkflowState:
    """Before a planned migration or failback: the records keep their values with a short TTL, so that
    resolvers drop the old answers soon after the switch. The workflow then waits `ttlWaitSeconds`,
    until the longest old TTL has run out, before it shuts anything down."""
    started = clock()
    lowered, longest = [], 0
    for record in state.plan.records:
        if record.ttl <= ttl_s:
            continue
        sets = dns.record_sets(record.zone, record.name, record.type)
        if not sets:
            continue  # nothing cached to expire: the switch creates it
        lowered += [replace(s, ttl=ttl_s) for s in sets]
        longest = max(longest, record.ttl)
    progress = state.progress
    if not lowered:
        progress.ttl_wait_s = 0
        return state.note("LowerTtl", f"every record's TTL is {ttl_s} s or less already", clock, started)
    progress.ttl_changes = once(state.key("lower-ttl", ttl_s), lambda: dns.upsert(lowered))
    progress.ttl_expires_at = started + timedelta(seconds=longest)
    progress.ttl_wait_s = longest
    names = ", ".join(dict.fromkeys(r.name for r in lowered))
    return state.note(
        "LowerTtl",
        f"TTL of {names} lowered to {ttl_s} s; caches hold the old answers until "
        f"{progress.ttl_expires_at:%H:%M:%S} UTC: waiting {longest} s before the shutdown",
        clock,
        started,
    )
