"""Announcements to the alert subscribers (SNS topic, email subscriptions)."""

from __future__ import annotations

from typing import Any

from dcwatch.adapters.aws import LazyClient, aws_call
from dcwatch.subjects import fit_subject


class SnsNotifier:
    def __init__(self, topic_arn: str, client: Any | None = None):
        self.topic_arn = topic_arn
        self._client = LazyClient("sns", client)

    def publish(self, subject: str, message: str) -> str:
        with aws_call("sns:Publish"):
            response = self._client().publish(TopicArn=self.topic_arn, Subject=fit_subject(subject), Message=message)
        return str(response["MessageId"])
