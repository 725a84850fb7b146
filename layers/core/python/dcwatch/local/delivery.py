"""The event plumbing: rule matches delivered to their functions as EventBridge and Lambda's event source
mappings deliver them (at least once, unordered where a scenario says so), site decisions and notifications
to the runtime's listeners, and the evaluator's injected crash."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import boto3

from dcwatch.local.cloud import LocalCloud, Resources
from dcwatch.local.lambdas import ACCOUNT, LocalLambdas, running_function
from dcwatch.local.queues import QueuePump
from dcwatch.wiring import RULES, message_group

Listener = Callable[[dict[str, Any]], None]
# Concurrent copies of each rule's target: results of every vantage point arrive each interval, as in AWS.
RULE_WORKERS = 4


LATE_SEND_JOIN_S = 5.0  # one SendMessage to moto, with room for a loaded machine


class EvaluatorCrashed(RuntimeError):
    """Injected: the evaluator's process dies after updating check state, before it starts the workflow."""


@dataclass
class BusFaults:
    """Faults of the event bus and of the evaluator, set by scenarios; none while at rest."""

    duplicate: bool = False  # every ProbeRound is delivered twice
    late_s: int = 0  # and once more this many seconds later, behind newer results
    evaluator_crashes: int = 0  # the next N evaluations that would start a workflow die first


class EventPlumbing:
    """Drains the rules' queues into their functions, and the site-status and notification queues into the lists
    and listeners here; `start` again after the resources were created anew."""

    def __init__(self, config_name: str):
        self.config_name = config_name
        self.site_status: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.listen()
        self.bus = BusFaults()
        self.replayed: set[str] = set()
        self.pump: QueuePump | None = None
        self.lock = threading.Lock()
        self._late: list[threading.Timer] = []  # late copies not yet sent; `stop` drops them

    def listen(
        self, on_site_status: Listener = lambda event: None, on_notification: Listener = lambda body: None
    ) -> None:
        """Who hears site decisions and notifications (replaced per scenario)."""
        self._on_site_status, self._on_notification = on_site_status, on_notification

    def start(self, cloud: LocalCloud, lambdas: LocalLambdas, resources: Resources) -> None:
        def keep(into: list[dict[str, Any]], listener: str) -> Listener:
            def consume(item: dict[str, Any]) -> None:
                with self.lock:
                    into.append(item)
                getattr(self, listener)(item)

            return consume

        self.cloud, self.lambdas, self.resources = cloud, lambdas, resources
        self.pump = QueuePump(self.cloud)
        for rule in RULES:
            url = resources.rule_queues[rule.name]
            if rule.queue is not None:
                self.pump.route_batches(
                    url, partial(self._deliver_batch, rule.target, rule.name), rule.queue.batch_size
                )
            else:
                self.pump.route(url, partial(self._deliver, rule.target, rule.name), workers=RULE_WORKERS)
        self.pump.route(resources.site_status_queue, keep(self.site_status, "_on_site_status"))
        self.pump.route(resources.notification_queue, keep(self.notifications, "_on_notification"))
        self.pump.start()

    def stop(self) -> None:
        """Stops the delivery, and with it every late copy still to come: a copy of the last scenario's round
        sent after a reset would reach the new queue (same name) and be judged as the next scenario's news."""
        if self.pump is not None:
            self.pump.stop()
        with self.lock:
            late, self._late = self._late, []
        for timer in late:
            timer.cancel()
            timer.join(timeout=LATE_SEND_JOIN_S)  # one that is sending already finishes before the queue goes

    def install_crash_hook(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        boto3.DEFAULT_SESSION.events.register("before-call.sfn.StartExecution", self._maybe_crash)  # type: ignore[union-attr]

    def remove_crash_hook(self) -> None:
        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-call.sfn.StartExecution", self._maybe_crash)

    def _maybe_crash(self, **_: Any) -> None:
        if not running_function().endswith("-Evaluate"):
            return
        with self.lock:
            if self.bus.evaluator_crashes <= 0:
                return
            self.bus.evaluator_crashes -= 1
        raise EvaluatorCrashed("injected: the evaluator died before starting the workflow")

    def _deliver(self, key: str, rule: str, event: dict[str, Any]) -> None:
        """A rule's target invoked with the matched event, as EventBridge invokes a Lambda target."""
        event.setdefault("account", ACCOUNT)  # moto's delivery to SQS leaves out `account`
        self._misdeliver(rule, event)
        payload, error = self.lambdas.invoke(f"{self.cloud.prefix}-{key}", event)
        if error:
            raise RuntimeError(f"{key}: {payload.get('errorType')}: {payload.get('errorMessage')}")

    def _deliver_batch(self, key: str, rule: str, event: dict[str, Any]) -> dict[str, str]:
        """A queued rule's target invoked with a batch, as Lambda's event source mapping invokes it; the
        message ids it reports failed (partial batch response), or all of them when it failed as a whole."""
        for record in event["Records"]:
            self._misdeliver(rule, json.loads(record["body"]))
        payload, error = self.lambdas.invoke(f"{self.cloud.prefix}-{key}", event)
        if error:
            raise RuntimeError(f"{key}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        failed = (payload or {}).get("batchItemFailures", [])
        return {str(item["itemIdentifier"]): f"{key} reported it failed" for item in failed}

    def _misdeliver(self, rule: str, event: dict[str, Any]) -> None:
        """At-least-once and unordered, as EventBridge may deliver: the same event again, now and later (a
        FIFO queue's own deduplication lasts 5 minutes; these copies stand for a redelivery it does not catch)."""
        bus = self.bus
        if not (bus.duplicate or bus.late_s) or event.get("id") in self.replayed:
            return
        self.replayed.add(str(event.get("id")))
        sqs, body = self.cloud.client("sqs"), json.dumps(event)
        queue = self.resources.rule_queues[rule]
        fifo = queue.endswith(".fifo")

        def send(copy: str) -> None:
            if fifo:
                group = message_group(self.config_name)
                dedup = f"{event.get('id')}-{copy}"
                sqs.send_message(QueueUrl=queue, MessageBody=body, MessageGroupId=group, MessageDeduplicationId=dedup)
            else:
                sqs.send_message(QueueUrl=queue, MessageBody=body, DelaySeconds=bus.late_s if copy == "late" else 0)

        if bus.duplicate:
            send("again")
        if bus.late_s:
            if fifo:  # a FIFO queue delays no single message: the copy is sent late instead
                timer = threading.Timer(bus.late_s, send, args=("late",))
                timer.daemon = True
                with self.lock:
                    self._late = [t for t in self._late if t.is_alive()] + [timer]
                timer.start()
            else:
                send("late")
