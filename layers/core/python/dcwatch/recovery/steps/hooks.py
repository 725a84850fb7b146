"""Running a recovery's hooks: each once per run, with the mode in its payload, its outcome on the timeline, and a
failed `stop` hook stopping the workflow."""

from __future__ import annotations

from dataclasses import asdict
from functools import partial
from typing import Any

from dcwatch.config import Hook
from dcwatch.errors import HookFailed
from dcwatch.ports import HookResult, HookRunner, Once
from dcwatch.recovery.state import Clock, WorkflowState


class NoHooks:
    def run(self, hook: Hook, payload: Any) -> HookResult:
        return HookResult(False, "no hook runner available in this step")


def _call_hook(runner: HookRunner, hook: Hook, payload: dict[str, Any]) -> dict[str, Any]:
    result = runner.run(hook, payload)
    return asdict(result) | {"answer": dict(result.answer)}


def run_hooks(
    state: WorkflowState,
    hooks: list[Hook],
    when: str,
    runner: HookRunner,
    once: Once,
    clock: Clock,
    *,
    vm: str | None = None,
    extra: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Each hook once per run, its payload saying the mode (a hook can tell a drill from a disaster); returns
    their outcomes (`ok`, `detail`, `answer`). A failed `stop` hook stops the workflow."""
    group = state.progress.group + 1
    targets = {"promote": f"storage at {state.plan.to}", "snapshot": "drill", "snapshot-cleanup": "drill"}
    target = vm or targets.get(when, f"group {group}")
    outcomes = []
    for hook in hooks:
        started = clock()
        payload = {
            "incidentId": state.incident_id,
            "mode": state.plan.mode,
            "when": when,
            "from": state.plan.from_site,
            "to": state.plan.to,
            "group": group,
            "vm": vm,
            "hook": hook.name,
            **(extra or {}),
        }
        outcome = once(state.key("hook", when, group, vm or "-", hook.name), partial(_call_hook, runner, hook, payload))
        outcomes.append(outcome)
        text = f"{when} hook {hook.name} ({target}): {outcome['detail']}"
        if outcome["ok"]:
            state.note("Hook", text, clock, started)
        elif hook.on_failure == "continue":
            state.progress.hook_failures.append(text)
            state.note("Hook", f"FAILED {text}; continuing (on_failure: continue)", clock, started)
        else:
            raise HookFailed(f"{text}; stopping (on_failure: stop)")
    return outcomes
