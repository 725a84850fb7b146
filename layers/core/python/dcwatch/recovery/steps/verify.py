"""VerifyServices: every service check of the plan passes at the standby before DNS moves."""

from __future__ import annotations

from dcwatch.config import Config
from dcwatch.detection.checks import service_checks
from dcwatch.errors import ServiceNotVerified
from dcwatch.recovery.state import Clock, Probe, WorkflowState, utcnow


def verify_services(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    checks = [c for c in service_checks(config, state.plan.to) if c.service in state.plan.services]
    results = probe(checks, f"verify-{state.incident_id}")
    failed = [f"{r.service}/{r.check}: {r.reason}" for r in results if not r.ok and r.critical]
    if failed:
        raise ServiceNotVerified(f"not serving at {state.plan.to}: " + "; ".join(failed))
    return state.note("VerifyServices", f"{len(results)} checks pass at {state.plan.to}", clock)
