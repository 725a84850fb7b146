"""The alerts topic: our own KMS key (CloudWatch alarms can publish only to a topic whose key lets them), the
alarms' right to publish, and the config's e-mail subscribers."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions

from dcwatch.config import Config
from dcwatch_infra import constants as c


def alerts_topic(stack: Stack, config: Config) -> sns.Topic:
    """The topic, in `stack` itself (its logical ids are those it was deployed with)."""
    # Our own key, not aws/sns: CloudWatch alarms can only publish to a topic whose key lets them.
    key = kms.Key(
        stack,
        c.ALERTS_KEY,
        description=f"dcwatch {config.name}: encrypts the alerts topic",
        enable_key_rotation=True,
        removal_policy=RemovalPolicy.DESTROY,
        pending_window=Duration.days(7),
    )
    alarms = iam.ServicePrincipal("cloudwatch.amazonaws.com")
    same_account = {"StringEquals": {"aws:SourceAccount": stack.account}}
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublishToTheAlertsTopic",
            principals=[alarms],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],
            conditions=same_account,
        )
    )
    topic = sns.Topic(
        stack,
        c.ALERTS_TOPIC,
        display_name=f"dcwatch {config.name}",
        master_key=key,
        enforce_ssl=True,
    )
    topic.add_to_resource_policy(
        iam.PolicyStatement(
            sid="CloudWatchAlarmsPublish",
            principals=[alarms],
            actions=["sns:Publish"],
            resources=[topic.topic_arn],
            conditions=same_account,
        )
    )
    for address in config.alerts.email:
        topic.add_subscription(subscriptions.EmailSubscription(address))
    return topic
