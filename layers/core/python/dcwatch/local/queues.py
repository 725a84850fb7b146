"""SQS consumed as Lambda consumes it: queues drained in the background, each message (or batch) to its consumer,
retried as Lambda retries and kept as a dead-letter queue keeps what fails every attempt."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dcwatch.local.cloud import REGION

if TYPE_CHECKING:
    from dcwatch.local.cloud import LocalCloud

LONG_POLL_S = 1  # how long an idle queue consumer waits inside moto for its next message


# An SQS event in; the ids of the messages that failed out, each with why (a partial batch response).
BatchConsumer = Callable[[dict[str, Any]], dict[str, str]]


def _one_by_one(consumer: Callable[[dict[str, Any]], None]) -> BatchConsumer:
    """A consumer of one message body as a batch consumer: each message on its own, failing on its own."""

    def consume(event: dict[str, Any]) -> dict[str, str]:
        failed = {}
        for record in event["Records"]:
            try:
                consumer(json.loads(record["body"]))
            except Exception as exc:  # noqa: BLE001 - retried, then kept and reported, like a DLQ would
                failed[record["messageId"]] = f"{type(exc).__name__}: {exc}"
        return failed

    return consume


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Received SQS messages as the event Lambda's event source mapping passes to a function."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class QueuePump:
    """Drains SQS queues in the background and hands each message to its consumer, in order.

    A consumer that fails gets the message again after `retry_delay_s`, at most `attempts` times in
    all, as Lambda retries an asynchronous invocation (twice, after a minute and two in AWS); a
    message that fails every attempt is reported, as a dead-letter queue would keep it.
    """

    def __init__(self, cloud: LocalCloud, attempts: int = 3, retry_delay_s: int = 1):
        self.cloud = cloud
        self.attempts, self.retry_delay_s = attempts, retry_delay_s
        self._routes: list[tuple[str, BatchConsumer, int, int]] = []  # queue, consumer, workers, batch size
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.retried: list[str] = []

    def route(self, queue_url: str, consumer: Callable[[dict[str, Any]], None], workers: int = 1) -> QueuePump:
        """Each message's body to `consumer`, one by one; `workers` > 1: that many concurrent consumers, as Lambda
        runs concurrent copies (order is then lost)."""
        self._routes.append((queue_url, _one_by_one(consumer), workers, 10))
        return self

    def route_batches(self, queue_url: str, consumer: BatchConsumer, batch_size: int) -> QueuePump:
        """As Lambda's event source mapping feeds a function from a FIFO queue: one poller, batches of up to
        `batch_size` messages as an SQS event; the consumer returns the ids of the messages that failed (a
        partial batch response), which come again after `retry_delay_s`, at most `attempts` times in all."""
        self._routes.append((queue_url, consumer, 1, batch_size))
        return self

    def start(self) -> QueuePump:
        for url, consumer, workers, size in self._routes:
            for n in range(workers):
                # Each poller's client is made here, not in its thread: making a client copies the default
                # session's event handlers, which code elsewhere may be registering at that moment (a test's
                # hook: "dictionary changed size during iteration" killed a poller once, in CI).
                sqs = self.cloud.client("sqs")
                thread = threading.Thread(
                    target=self._drain, args=(sqs, url, consumer, size), name=f"pump-{n}-{url[-20:]}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
        return self

    def _drain(self, sqs: Any, url: str, consumer: BatchConsumer, size: int) -> None:
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self._stop.is_set():
            try:
                # Long polling: an empty answer has already waited LONG_POLL_S, so no pause is needed between
                # asks (a dozen consumers asking every 50 ms had kept moto's one process busy).
                messages = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=size, AttributeNames=["All"], WaitTimeSeconds=LONG_POLL_S
                ).get("Messages", [])
            except Exception as exc:  # noqa: BLE001 - moto going away at shutdown
                if not self._stop.is_set():
                    self.errors.append(f"receive {url}: {exc}")
                return
            if not messages:
                continue
            try:
                failed = consumer(sqs_event(messages, arn))
            except Exception as exc:  # noqa: BLE001 - the whole batch failed, as a function error does
                failed = {m["MessageId"]: f"{type(exc).__name__}: {exc}" for m in messages}
            done: list[dict[str, str]] = []
            for message in messages:
                if message["MessageId"] in failed:
                    failure = f"{url}: {failed[message['MessageId']]}"
                    if int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1)) < self.attempts:
                        self.retried.append(failure)
                        sqs.change_message_visibility(
                            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self.retry_delay_s
                        )
                        continue
                    self.errors.append(failure)  # kept, as a dead-letter queue would keep it
                done.append({"Id": str(len(done)), "ReceiptHandle": message["ReceiptHandle"]})
            if done:
                sqs.delete_message_batch(QueueUrl=url, Entries=done)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
