"""VerifyServices: every service check of the plan passes at the standby before DNS moves; a drill's checks run
against its clones, at their drill addresses."""

from __future__ import annotations

from collections.abc import Iterable

from dcwatch.config import Config
from dcwatch.detection.checks import PlannedCheck, drill_checks, service_checks
from dcwatch.errors import ServiceNotVerified
from dcwatch.recovery.plan import RecoveryPlan
from dcwatch.recovery.state import Clock, Probe, WorkflowState, utcnow


def plan_checks(config: Config, plan: RecoveryPlan, services: Iterable[str] | None = None) -> list[PlannedCheck]:
    """What proves the plan's services (or `services` of them) up at `plan.to`: a drill's clones are proven at
    their drill addresses, never at the production ones."""
    chosen = [s for s in plan.services if services is None or s in set(services)]
    if plan.drill is not None:
        return drill_checks(config, plan.to, chosen)
    return service_checks(config, plan.to, chosen)


def verify_services(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    results = probe(plan_checks(config, state.plan), f"verify-{state.incident_id}")
    failed = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    where = f"the drill clones at {state.plan.to}" if state.plan.drill else state.plan.to
    if failed:
        raise ServiceNotVerified(f"not serving at {where}: " + "; ".join(failed))
    return state.note("VerifyServices", f"{len(results)} checks pass at {where}", clock)
