"""The agent's file on its VM's disk: what a restart must not forget.

The last renewal and answered heartbeat (a restarted agent cut off from both fences on time), the
peer's last sequence (no replay after a restart), and fences whose audit record still waits for AWS.
Written atomically (a temporary file renamed over the old one), so a crash leaves one or the other.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from dcwatch.agent.report import FenceRecord


@dataclass(frozen=True)
class AgentFile:
    last_renewal: datetime | None = None
    last_peer_ok: datetime | None = None
    peer_sequence: int = 0
    last_fence: FenceRecord | None = None
    pending_audit: tuple[FenceRecord, ...] = field(default=())

    def fenced(self, record: FenceRecord) -> AgentFile:
        return replace(self, last_fence=record, pending_audit=(*self.pending_audit, record))

    def audited(self, fence_id: str) -> AgentFile:
        last = self.last_fence
        if last is not None and last.fence_id == fence_id:
            last = last.model_copy(update={"audited": True})
        pending = tuple(r for r in self.pending_audit if r.fence_id != fence_id)
        return replace(self, last_fence=last, pending_audit=pending)


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def load(path: Path) -> AgentFile:
    """The saved file, or a fresh one when there is none; a damaged file is an error for a person."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AgentFile()
    except (OSError, ValueError) as exc:
        raise ValueError(f"agent state file {path}: unreadable ({exc}); move it away to start afresh") from None
    last = data.get("lastFence")
    return AgentFile(
        last_renewal=_time(data.get("lastRenewal")),
        last_peer_ok=_time(data.get("lastPeerOk")),
        peer_sequence=int(data.get("peerSequence", 0)),
        last_fence=FenceRecord.model_validate(last) if last else None,
        pending_audit=tuple(FenceRecord.model_validate(r) for r in data.get("pendingAudit", [])),
    )


def save(path: Path, state: AgentFile) -> None:
    data = {
        "lastRenewal": state.last_renewal.isoformat() if state.last_renewal else None,
        "lastPeerOk": state.last_peer_ok.isoformat() if state.last_peer_ok else None,
        "peerSequence": state.peer_sequence,
        "lastFence": state.last_fence.model_dump(mode="json", by_alias=True) if state.last_fence else None,
        "pendingAudit": [r.model_dump(mode="json", by_alias=True) for r in state.pending_audit],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("w", encoding="utf-8") as out:
        json.dump(data, out, indent=1)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
