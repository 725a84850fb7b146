"""The report bucket: every recovery's report page (drills included), kept as evidence.

Encrypted (SSE-S3), versioned, private (all public access blocked, TLS only), deny-delete by bucket policy for
everyone (the lifecycle, S3's own, still expires reports after `reports.retention_days`), and with
`reports.lock_days` Object Lock in governance mode on top. Retained when the stack goes."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from dcwatch.config import Config
from dcwatch_infra import constants as c
from dcwatch_infra import nag

DENIED = ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutLifecycleConfiguration", "s3:PutBucketVersioning"]


def reports_bucket(stack: Stack, config: Config) -> s3.Bucket:
    keep = config.reports
    lock = keep.lock_days
    bucket = s3.Bucket(
        stack,
        c.REPORTS_BUCKET,
        encryption=s3.BucketEncryption.S3_MANAGED,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        object_lock_enabled=lock is not None,
        object_lock_default_retention=s3.ObjectLockRetention.governance(Duration.days(lock)) if lock else None,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="retention",
                expiration=Duration.days(keep.retention_days),
                noncurrent_version_expiration=Duration.days(1),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            )
        ],
        removal_policy=RemovalPolicy.RETAIN,
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            sid="ReportsAreEvidence",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=DENIED,
            resources=[bucket.bucket_arn, bucket.arn_for_objects("*")],
        )
    )
    nag.acknowledge(
        bucket,
        "S1",
        "the reports are written by the workflow's one function and read by operators; who read what is in "
        "CloudTrail's data events where the account records them, not in a second bucket of access logs",
    )
    return bucket
