"""The local runtime's late copies of probe rounds (scenario `bus: {late_s: N}`): a copy still to come when the
delivery stops is dropped, so it cannot reach the queue a reset makes anew under the same name."""

from __future__ import annotations

import time
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from dcwatch.local.delivery import BusFaults, EventPlumbing
from tests.helpers import moto_credentials

pytestmark = pytest.mark.integration

RULE = "ProbeRounds"


def plumbing_on_a_fifo_queue(late_s: int) -> tuple[EventPlumbing, str]:
    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="rounds.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    plumbing = EventPlumbing("demo")
    plumbing.cloud = SimpleNamespace(client=lambda name: boto3.client(name))  # type: ignore[assignment]
    plumbing.resources = SimpleNamespace(rule_queues={RULE: url})  # type: ignore[assignment]
    plumbing.bus = BusFaults(late_s=late_s)
    return plumbing, url


def messages(url: str) -> list[str]:
    got = boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return [m["Body"] for m in got.get("Messages", [])]


def test_a_late_copy_arrives_late_while_the_delivery_runs(monkeypatch):
    moto_credentials(monkeypatch)
    with mock_aws():
        plumbing, url = plumbing_on_a_fifo_queue(late_s=1)
        plumbing._misdeliver(RULE, {"id": "round-1", "detail": {}})
        assert messages(url) == []
        deadline = time.monotonic() + 10
        while not (got := messages(url)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [b for b in got if '"round-1"' in b], "the late copy never came"


def test_a_late_copy_still_to_come_when_the_delivery_stops_is_never_sent(monkeypatch):
    moto_credentials(monkeypatch)
    with mock_aws():
        plumbing, url = plumbing_on_a_fifo_queue(late_s=1)
        plumbing._misdeliver(RULE, {"id": "round-1", "detail": {}})
        plumbing.stop()
        time.sleep(1.5)  # past the copy's due time
        assert messages(url) == []
