"""The signed heartbeat between the two site agents: pure protocol, no sockets.

A heartbeat and its answer are JSON, signed with HMAC-SHA256 over the exact bytes sent, with a key
both agents share. The receiver refuses a wrong signature, a message from anyone but its configured
peer, a message sent outside the allowed clock skew, a replay (a sequence not above the last one
accepted from that peer, or a nonce already seen), and an answer that does not answer our nonce.
Sequences start from the clock in microseconds, so a restarted agent continues above its old ones.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

SIGNATURE_HEADER = "X-Dcwatch-Signature"
MAX_MESSAGE_BYTES = 4096
NONCES_KEPT = 4096
Kind = Literal["heartbeat", "answer"]


class Refused(Exception):
    """A message that must not count as contact; `reason` is a short code for logs and the sender."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason, self.detail = reason, detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True)
class Message:
    kind: Kind
    site: str
    agent_id: str
    sequence: int
    sent_at: datetime
    nonce: str
    in_reply_to: str | None = None  # an answer names the nonce of the heartbeat it answers

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "site": self.site,
            "agentId": self.agent_id,
            "sequence": self.sequence,
            "sentAt": self.sent_at.isoformat(),
            "nonce": self.nonce,
        }
        if self.in_reply_to is not None:
            data["inReplyTo"] = self.in_reply_to
        return data

    @classmethod
    def from_json(cls, data: Any) -> Message:
        try:
            sent_at = datetime.fromisoformat(data["sentAt"])
            if sent_at.tzinfo is None:
                raise ValueError("sentAt without offset")
            reply = data.get("inReplyTo")
            return cls(
                kind=_kind(data["kind"]),
                site=str(data["site"]),
                agent_id=str(data["agentId"]),
                sequence=int(data["sequence"]),
                sent_at=sent_at,
                nonce=str(data["nonce"]),
                in_reply_to=None if reply is None else str(reply),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise Refused("malformed", str(exc)[:100]) from None


def _kind(value: Any) -> Kind:
    if value == "heartbeat":
        return "heartbeat"
    if value == "answer":
        return "answer"
    raise ValueError(f"unknown kind {value!r}")


def sign(key: bytes, body: bytes) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def encode(key: bytes, message: Message) -> tuple[bytes, str]:
    """The bytes to send and their signature."""
    body = json.dumps(message.to_json(), separators=(",", ":"), sort_keys=True).encode()
    return body, sign(key, body)


def open_signed(key: bytes, body: bytes, signature: str | None) -> Message:
    """The message, once its signature proves it was made with our key; parsed only after that."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise Refused("too large", f"{len(body)} bytes")
    if not signature or not hmac.compare_digest(sign(key, body), signature.strip().lower()):
        raise Refused("bad signature")
    try:
        data = json.loads(body)
    except ValueError:
        raise Refused("malformed", "not JSON") from None
    return Message.from_json(data)


class Sequence:
    """Our own sequence numbers: strictly increasing; a later run starts from the clock, above the numbers an
    earlier run used as long as it used fewer than one per microsecond (it uses one per heartbeat)."""

    def __init__(self, clock_us: int | None = None):
        self._last = clock_us if clock_us is not None else time.time_ns() // 1000

    def next(self) -> int:
        self._last = max(self._last + 1, time.time_ns() // 1000)
        return self._last


def new_nonce() -> str:
    return secrets.token_hex(16)


class Verifier:
    """Checks messages from the one configured peer and remembers what it accepted, to refuse replays."""

    def __init__(self, key: bytes, peer_site: str, max_skew_s: float, last_sequence: int = 0):
        self._key, self.peer_site, self.max_skew_s = key, peer_site, max_skew_s
        self.last_sequence = last_sequence
        self._nonces: OrderedDict[str, None] = OrderedDict()

    def set_key(self, key: bytes) -> None:
        self._key = key

    def _fresh(self, message: Message, now: datetime) -> None:
        if message.site != self.peer_site:
            raise Refused("unexpected site", f"claims {message.site!r}, the peer is {self.peer_site!r}")
        skew = (message.sent_at - now).total_seconds()
        if skew > self.max_skew_s:
            raise Refused("future-dated", f"sent {skew:.1f} s ahead of our clock (max {self.max_skew_s:g})")
        if -skew > self.max_skew_s:
            raise Refused("late", f"sent {-skew:.1f} s ago (max {self.max_skew_s:g})")

    def _remember(self, message: Message) -> None:
        if message.nonce in self._nonces:
            raise Refused("replayed nonce", message.nonce)
        self._nonces[message.nonce] = None
        while len(self._nonces) > NONCES_KEPT:
            self._nonces.popitem(last=False)

    def accept_heartbeat(self, body: bytes, signature: str | None, now: datetime) -> Message:
        message = open_signed(self._key, body, signature)
        if message.kind != "heartbeat":
            raise Refused("wrong kind", message.kind)
        self._fresh(message, now)
        if message.sequence <= self.last_sequence:
            raise Refused("replayed sequence", f"{message.sequence} not above {self.last_sequence}")
        self._remember(message)
        self.last_sequence = message.sequence
        return message

    def accept_answer(self, body: bytes, signature: str | None, now: datetime, our_nonce: str) -> Message:
        message = open_signed(self._key, body, signature)
        if message.kind != "answer":
            raise Refused("wrong kind", message.kind)
        self._fresh(message, now)
        if message.in_reply_to != our_nonce:
            raise Refused("not our heartbeat", f"answers {message.in_reply_to!r}")
        self._remember(message)
        return message


def heartbeat(site: str, agent_id: str, sequence: int, now: datetime | None = None) -> Message:
    return Message("heartbeat", site, agent_id, sequence, now or datetime.now(UTC), new_nonce())


def answer(site: str, agent_id: str, sequence: int, to: Message, now: datetime | None = None) -> Message:
    return Message("answer", site, agent_id, sequence, now or datetime.now(UTC), new_nonce(), to.nonce)
