"""Hooks against a real loopback HTTP server, and the idempotency table (Powertools) against moto."""

from __future__ import annotations

import time
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.hooks import HookCaller
from dcwatch.adapters.idempotency import IdempotentSteps
from dcwatch.config import Hook
from dcwatch.errors import StepInProgress
from dcwatch.local.cloud import create_tables
from tests.hook_server import HookServer
from tests.integration.conftest import STUCK_NAME

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server() -> Iterator[HookServer]:
    running = HookServer().start()
    yield running
    running.stop()


def hook(url: str, **extra) -> Hook:
    return Hook(name="warm-cache", url=url, timeout_s=0.5, **extra)


PAYLOAD = {"incidentId": "inc-1", "vm": "shop-web-b1"}


def test_an_http_hook_that_answers_as_expected_is_done_and_was_told_what_for(server):
    result = HookCaller().run(hook(server.url("/hook/warm-cache")), PAYLOAD)
    assert result.ok and result.detail.endswith("status 200")
    assert server.calls[-1] == "warm-cache"


def test_an_http_hook_that_answers_another_status_failed_and_says_what_it_got(server):
    server.behaviour["broken"] = "fail"
    result = HookCaller().run(hook(server.url("/hook/broken")), PAYLOAD)
    assert not result.ok and result.detail.endswith("status 500, expected 200")


def test_an_http_hook_that_hangs_fails_at_its_timeout_not_later(server):
    server.behaviour["stuck"] = "hang"
    started = time.monotonic()
    result = HookCaller().run(hook(server.url("/hook/stuck")), PAYLOAD)
    assert not result.ok and result.detail.endswith("timeout after 0.5 s")
    assert time.monotonic() - started < 3


def test_an_http_hook_whose_name_the_system_resolver_never_answers_fails_at_its_timeout(server, stuck_lookups):
    started = time.monotonic()
    result = HookCaller().run(hook(f"http://{STUCK_NAME}:{server.port}/hook/warm-cache"), PAYLOAD)
    assert not result.ok and f"name lookup of '{STUCK_NAME}' timed out after 0.45 s" in result.detail
    assert time.monotonic() - started < 3


def test_an_http_hook_nobody_listens_to_failed():
    result = HookCaller().run(hook("http://127.0.0.1:9/"), PAYLOAD)
    assert not result.ok and "ClientConnectorError" in result.detail


@pytest.fixture
def steps(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        tables = create_tables(client, "once")
        yield IdempotentSteps(tables["Idempotency"], client)


def test_an_action_runs_once_per_key_and_a_retry_gets_the_first_result(steps):
    calls = []

    def power_on():
        calls.append(1)
        return {"vm-1": "task-17"}

    assert steps("run-1/power-on/1/0", power_on) == {"vm-1": "task-17"}
    assert steps("run-1/power-on/1/0", power_on) == {"vm-1": "task-17"}
    assert steps("run-2/power-on/1/0", power_on) == {"vm-1": "task-17"}
    assert len(calls) == 2, "once per key: the second run acts again"


def test_an_action_still_running_elsewhere_fails_its_retry_as_in_progress_which_the_workflow_waits_out(steps):
    """StepInProgress, by name: the ASL's first retrier, which waits past the step Lambda's timeout."""
    seen: list[str] = []

    def power_on() -> str:
        # A retry of the same step arrives while the first invocation still acts (or died mid-way)
        with pytest.raises(StepInProgress, match="run-1/group-1 is still in progress"):
            steps("run-1/group-1", lambda: "twice")
        seen.append("acted")
        return "task-1"

    assert steps("run-1/group-1", power_on) == "task-1" and seen == ["acted"]


def test_an_action_that_failed_leaves_no_record_so_its_retry_acts(steps):
    def fail():
        raise ConnectionError("vCenter went away")

    with pytest.raises(ConnectionError):
        steps("run-1/notify", fail)
    assert steps("run-1/notify", lambda: "msg-1") == "msg-1"
