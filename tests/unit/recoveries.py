"""Audit records of recoveries that really ran: the workflow's steps in the order the ASL runs them, over the
in-memory fakes, each step's entries stamped with its start as the step dispatcher does, on a clock that ticks."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from dcwatch.detection.checks import Outcome, run_round
from dcwatch.recovery import messages, steps
from dcwatch.recovery.state import WorkflowState
from tests.helpers import demo_config
from tests.unit.fakes import FakeDns, FakeInventory, FakeStore

T0 = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


class TickingClock:
    """Every look at it moves it on by `tick_s`: steps take time, as they do."""

    def __init__(self, start: datetime, tick_s: float):
        self.now, self.tick = start, timedelta(seconds=tick_s)

    def __call__(self) -> datetime:
        self.now += self.tick
        return self.now


def _passing(checks: Any, round_id: str) -> Any:
    async def runner(check: Any) -> Outcome:
        return Outcome(True)

    return run_round(checks, runner, vantage="workflow", round_id=round_id)


def ran_failover(
    reason: str = "dc-a lost power", tick_s: float = 0.5, *, reports: Any = None, render: Any = None, **request: Any
) -> dict[str, Any]:
    """The `succeeded` record of a disaster failover dc-a -> dc-b: fenced, three priority groups, verified, DNS;
    with `reports` and `render`, RecordAudit writes its report page there as in the stack."""
    config, clock = demo_config(), TickingClock(T0, tick_s)
    raw = {"action": "failover", "from": "dc-a", "to": "dc-b", "reason": reason, "incidentId": "manual-inc-1"}
    state = steps.validate_request(raw | request, config, clock)
    failed_site = FakeInventory({vm: "poweredOn" for vm in state.plan.fence})
    standby = FakeInventory({vm: "poweredOff" for group in state.plan.groups for vm in group})
    dns, store = FakeDns(pending_polls=1), FakeStore()

    @contextmanager
    def reachable() -> Any:
        yield failed_site

    def step(run: Callable[[WorkflowState], WorkflowState]) -> None:
        nonlocal state
        begun, since = clock(), len(state.timeline)
        state = WorkflowState.model_validate(run(state).dump())
        state.stamp_started(begun, since)

    step(lambda s: steps.fence(s, reachable, clock))
    step(lambda s: steps.check_standby(s, standby, clock))
    while not state.progress.all_groups_up:
        step(lambda s: steps.start_group(s, standby, timeout_s=60, clock=clock))
        step(lambda s: steps.check_group(s, standby, clock=clock))
    step(lambda s: steps.verify_services(s, config, _passing, clock))
    step(lambda s: steps.switch_dns(s, dns, 60, clock))
    while not state.progress.dns_in_sync:
        step(lambda s: steps.check_dns(s, dns, clock))
    step(lambda s: steps.record_audit(s, store, clock, reports=reports, render=render))
    return messages.audit_record(state, "succeeded", clock)
