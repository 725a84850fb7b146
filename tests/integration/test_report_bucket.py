"""The report writer against S3 (moto): a page is kept once under its key, with its type, and a retried step
does not replace it."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from dcwatch.adapters.reports import S3Reports
from dcwatch.reports import render_report
from tests.unit.recoveries import ran_failover

pytestmark = pytest.mark.integration


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="eu-central-1")
        client.create_bucket(Bucket="reports", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        client.put_bucket_versioning(Bucket="reports", VersioningConfiguration={"Status": "Enabled"})
        yield client


def test_a_report_is_kept_once_under_its_key_and_its_link_opens_it_in_the_console(s3):
    reports = S3Reports("reports", s3)
    key = "reports/drill/manual-x/run-1.html"
    link = reports.put_report(key, "<html>first</html>")
    assert link == "https://s3.console.aws.amazon.com/s3/object/reports?prefix=reports%2Fdrill%2Fmanual-x%2Frun-1.html"
    assert reports.put_report(key, "<html>retried</html>") == link, "a retried step finds its report there"
    kept = s3.get_object(Bucket="reports", Key=key)
    assert kept["Body"].read() == b"<html>first</html>"
    assert kept["ContentType"] == "text/html; charset=utf-8"
    assert len(s3.list_object_versions(Bucket="reports")["Versions"]) == 1


def test_recordaudit_writes_the_runs_rendered_report_page_to_the_bucket_as_in_the_stack(s3):
    reports = S3Reports("reports", s3)
    record = ran_failover(reports=reports, render=lambda audit: render_report(audit, 60.0))
    key = f"reports/disaster/manual-inc-1/{record['runId']}.html"
    page = s3.get_object(Bucket="reports", Key=key)["Body"].read().decode()
    assert page.lstrip().lower().startswith("<!doctype html") and "Failover dc-a → dc-b" in page
    steps = [e for e in record["timeline"] if e.get("started")]
    assert page.count('<rect class="bar ') == len(steps) > 10, "one bar a step with a start"
    assert "PASS" in page and "within the target of 60 s" in page
