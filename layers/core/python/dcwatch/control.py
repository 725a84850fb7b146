"""What operators change by hand: the automation switch and acknowledgements. Every change is audited."""

from __future__ import annotations

from datetime import datetime

from dcwatch.decision import AutomationSwitch
from dcwatch.ports import StateStore

AUTOMATION_AUDIT = "automation"


def switch_automation(store: StateStore, enabled: bool, reason: str, by: str, now: datetime) -> AutomationSwitch:
    """Turn automatic failover on or off; the evaluator reads the switch before every failover it would start."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    previous = store.automation()
    switch = AutomationSwitch(enabled, reason.strip(), by, now)
    store.set_automation(switch)
    store.append_audit(
        AUTOMATION_AUDIT,
        {
            "kind": "automation",
            "enabled": enabled,
            "previouslyEnabled": previous.enabled,
            "reason": switch.reason,
            "by": by,
            "decidedAt": now,
            "explanation": f"{by} switched {switch.describe()}",
        },
    )
    return switch


def acknowledge(store: StateStore, incident_id: str, reason: str, by: str, now: datetime) -> str:
    """Let a failover held back by the cooldown start: a human has looked at it and agrees."""
    if len(reason.strip()) < 3:
        raise ValueError("a reason is required (--reason), for the audit trail")
    last = store.last_failover()
    store.acknowledge(incident_id, by, reason.strip())
    previous = f"; the last failover was {last.incident} at {last.at.isoformat()}" if last else ""
    text = f"{by} acknowledged {incident_id}: a failover for it may start within the cooldown{previous}"
    store.append_audit(
        incident_id,
        {"kind": "acknowledgement", "by": by, "reason": reason.strip(), "decidedAt": now, "explanation": text},
    )
    return text
