"""The heartbeat between the site agents proves who sent it and when: a wrong key, another site,
a replay, a late or future-dated message and an answer to someone else's heartbeat are all refused."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from dcwatch.agent.heartbeat import Refused, Sequence, Verifier, answer, encode, heartbeat

KEY = b"k" * 32
NOW = datetime(2026, 11, 25, 3, 0, tzinfo=UTC)


def verifier(**kw) -> Verifier:
    return Verifier(KEY, "dc-a", max_skew_s=5, **kw)


def beat(sequence: int = 10, site: str = "dc-a", at: datetime = NOW, key: bytes = KEY):
    return encode(key, heartbeat(site, f"{site}@vm", sequence, at))


def refusal(call) -> str:
    with pytest.raises(Refused) as refused:
        call()
    return refused.value.reason


def test_a_signed_heartbeat_from_the_peer_is_accepted_and_its_answer_authenticates_the_receiver():
    receiver = verifier()
    body, signature = beat()
    message = receiver.accept_heartbeat(body, signature, NOW)
    assert (message.site, message.sequence) == ("dc-a", 10)
    # The answer names the heartbeat's nonce; the sender accepts it only for that nonce
    reply_body, reply_signature = encode(KEY, answer("dc-b", "dc-b@vm", 99, message, NOW))
    sender = Verifier(KEY, "dc-b", max_skew_s=5)
    assert sender.accept_answer(reply_body, reply_signature, NOW, message.nonce).in_reply_to == message.nonce


def test_a_heartbeat_signed_with_another_key_is_refused():
    body, signature = beat(key=b"x" * 32)
    assert refusal(lambda: verifier().accept_heartbeat(body, signature, NOW)) == "bad signature"


def test_a_heartbeat_changed_after_signing_or_unsigned_is_refused():
    body, signature = beat()
    forged = body.replace(b'"sequence":10', b'"sequence":11')
    assert refusal(lambda: verifier().accept_heartbeat(forged, signature, NOW)) == "bad signature"
    assert refusal(lambda: verifier().accept_heartbeat(body, None, NOW)) == "bad signature"


def test_a_replayed_heartbeat_is_refused_by_its_sequence():
    receiver = verifier()
    body, signature = beat(sequence=10)
    receiver.accept_heartbeat(body, signature, NOW)
    assert refusal(lambda: receiver.accept_heartbeat(body, signature, NOW)) == "replayed sequence"
    older, older_signature = beat(sequence=9)
    assert refusal(lambda: receiver.accept_heartbeat(older, older_signature, NOW)) == "replayed sequence"


def test_a_replayed_nonce_is_refused_even_with_a_higher_sequence():
    receiver = verifier()
    message = heartbeat("dc-a", "dc-a@vm", 10, NOW)
    receiver.accept_heartbeat(*encode(KEY, message), NOW)
    again = type(message)(**{**message.__dict__, "sequence": 11})
    assert refusal(lambda: receiver.accept_heartbeat(*encode(KEY, again), NOW)) == "replayed nonce"


def test_a_replay_after_the_receiver_restarted_is_refused_through_the_sequence_it_kept():
    body, signature = beat(sequence=10)
    assert refusal(lambda: verifier(last_sequence=10).accept_heartbeat(body, signature, NOW)) == "replayed sequence"


@pytest.mark.parametrize(("offset_s", "reason"), [(-6, "late"), (6, "future-dated")])
def test_a_heartbeat_outside_the_allowed_skew_is_refused(offset_s, reason):
    body, signature = beat(at=NOW + timedelta(seconds=offset_s))
    assert refusal(lambda: verifier().accept_heartbeat(body, signature, NOW)) == reason


def test_a_heartbeat_within_the_skew_is_accepted():
    body, signature = beat(at=NOW - timedelta(seconds=4.5))
    assert verifier().accept_heartbeat(body, signature, NOW).site == "dc-a"


def test_a_heartbeat_claiming_another_site_is_refused_even_when_correctly_signed():
    body, signature = beat(site="dc-c")
    assert refusal(lambda: verifier().accept_heartbeat(body, signature, NOW)) == "unexpected site"


def test_an_answer_is_not_a_heartbeat_and_a_heartbeat_is_not_an_answer():
    message = heartbeat("dc-a", "dc-a@vm", 10, NOW)
    reply = encode(KEY, answer("dc-a", "dc-a@vm", 11, message, NOW))
    assert refusal(lambda: verifier().accept_heartbeat(*reply, NOW)) == "wrong kind"
    # Our own heartbeat reflected back as if it were the peer's answer
    assert refusal(lambda: verifier().accept_answer(*encode(KEY, message), NOW, message.nonce)) == "wrong kind"


def test_an_answer_to_another_heartbeat_is_refused():
    ours = heartbeat("dc-b", "dc-b@vm", 10, NOW)
    other = heartbeat("dc-b", "dc-b@vm", 11, NOW)
    reply = encode(KEY, answer("dc-a", "dc-a@vm", 12, other, NOW))
    assert refusal(lambda: verifier().accept_answer(*reply, NOW, ours.nonce)) == "not our heartbeat"


def test_garbage_and_oversized_bodies_are_refused_without_parsing():
    from dcwatch.agent.heartbeat import sign

    junk = b"{not json"
    assert refusal(lambda: verifier().accept_heartbeat(junk, sign(KEY, junk), NOW)) == "malformed"
    missing = json.dumps({"kind": "heartbeat", "site": "dc-a"}).encode()
    assert refusal(lambda: verifier().accept_heartbeat(missing, sign(KEY, missing), NOW)) == "malformed"
    big = b"x" * 5000
    assert refusal(lambda: verifier().accept_heartbeat(big, sign(KEY, big), NOW)) == "too large"


def test_sequences_only_grow_and_a_restart_continues_above_the_old_ones():
    first = Sequence()
    numbers = [first.next() for _ in range(100)]
    assert numbers == sorted(set(numbers))
    time.sleep(0.01)  # a restart takes far longer than the numbers used before it
    assert Sequence().next() > numbers[-1]
