"""The standby's storage mirror, read through its status check: within the data-loss window before a
disaster's promotion, caught up (lag 0) before a planned one."""

from __future__ import annotations

from dcwatch.config import Config, HttpCheck
from dcwatch.detection.checks import PlannedCheck
from dcwatch.errors import MirrorNotCaughtUp, StorageNotSafe
from dcwatch.events import ProbeResult
from dcwatch.recovery.request import MODE_WORDS
from dcwatch.recovery.state import Clock, Probe, WorkflowState, utcnow


def probe_mirror(state: WorkflowState, config: Config, probe: Probe, condition: str) -> tuple[ProbeResult, str]:
    """The standby's mirror status check with one more condition, so the reason names what is wrong."""
    storage = state.plan.storage
    assert storage is not None
    check = next(c for c in config.site(storage.site).checks if c.name == storage.check)
    assert isinstance(check, HttpCheck)  # the config refuses any other kind
    spec = check.model_copy(update={"conditions": [*check.conditions, condition]})
    planned = PlannedCheck(storage.site, check.name, None, True, check.timeout_s, spec)
    (result,) = probe([planned], f"storage-{state.incident_id}")
    return result, f"storage mirror {check.name} at {storage.site}"


def check_storage(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    """Refuse to promote a standby whose mirror is out of sync beyond the data-loss window, unless forced.

    Reads the mirror through the site's own mirror status check, with the window added as one more
    condition, so the reason names what is wrong (`[BODY].mirror.lag_seconds <= 30: got 900`).
    """
    started, storage = clock(), state.plan.storage
    if storage is None:
        return state.note("CheckStorage", f"no storage mirror configured at {state.plan.to}: nothing to check", clock)
    result, where = probe_mirror(state, config, probe, f"{storage.lag} <= {storage.max_lag_s}")
    if result.ok:
        state.storage = f"{where} in sync, at most {storage.max_lag_s} s behind"
    elif state.request.force:
        state.storage = (
            f"{where} NOT safe ({result.reason}); promoted anyway as the request forced it: data may be lost"
        )
    elif state.request.dry_run:
        state.storage = f"{where} NOT safe ({result.reason}): a failover would be refused (unless forced)"
    else:
        raise StorageNotSafe(
            f"{where} not safe to promote: {result.reason}; the allowed data-loss window is {storage.max_lag_s} s. "
            "Nothing was changed. To accept the data loss, rerun the failover with force: true"
        )
    return state.note("CheckStorage", state.storage, clock, started)


def check_mirror_synced(state: WorkflowState, config: Config, probe: Probe, clock: Clock = utcnow) -> WorkflowState:
    """Migration, failback: with the leaving site off, the mirror must have caught up (lag 0) before the
    standby is promoted: a planned move loses no data, so `force` does not apply here."""
    started, storage = clock(), state.plan.storage
    if storage is None:
        return state.note("CheckMirrorSynced", f"no storage mirror configured at {state.plan.to}", clock)
    result, where = probe_mirror(state, config, probe, f"{storage.lag} == 0")
    if not result.ok:
        raise MirrorNotCaughtUp(
            f"{where} has not caught up after {state.plan.from_site} was shut down: {result.reason}. "
            f"A {MODE_WORDS[state.request.mode]} promises no data loss, so {state.plan.to} was not promoted "
            f"(force does not apply). {state.plan.from_site} is off: start it again, or wait for the mirror "
            "and rerun"
        )
    state.storage = f"{where} in sync, caught up (lag 0) after {state.plan.from_site} was shut down"
    return state.note("CheckMirrorSynced", state.storage, clock, started)
