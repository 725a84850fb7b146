"""The price list: us-east-1 list prices without free tiers, each with its source, and the billing units
(a month of 730 hours, 64 KB event chunks)."""

from __future__ import annotations

from dataclasses import dataclass

MONTH_S = 730 * 3600  # AWS prices a month as 730 hours
KB, GB = 1024, 1024**3
EVENT_CHUNK_BYTES = 64 * KB  # EventBridge PutEvents entries and SQS payloads are billed per 64 KB chunk
SQS_BATCH = 10  # the FIFO event source mapping's largest batch
SQS_LONG_POLL_S = 20  # the mapping's ReceiveMessage wait


@dataclass(frozen=True)
class Price:
    usd: float
    per: float  # units the price is for: 1e6 for "per million"
    unit: str
    source: str

    def describe(self) -> str:
        per = {1.0: "", 1e3: " per 1,000", 1e4: " per 10,000", 1e5: " per 100,000", 1e6: " per million"}[self.per]
        usd = f"{self.usd:.10f}".rstrip("0").rstrip(".")
        return f"${usd}{per} {self.unit}"

    def cost(self, quantity: float) -> float:
        return quantity * self.usd / self.per


# us-east-1 list prices, without free tiers. A source "x: ..." is aws.amazon.com/x/pricing; "read" = seen in
# copies of that page or of pricing guides quoting it on 2026-12-07; "known" = the long-standing list price, not
# found there (Route 53's health checks among them): check those before quoting a contract.


@dataclass(frozen=True)
class Prices:
    lambda_request: Price = Price(0.20, 1e6, "requests", "lambda: read 2026-12-07")
    lambda_gb_s_arm: Price = Price(0.0000133334, 1, "GB-s (arm64)", "lambda: read 2026-12-07")
    custom_event: Price = Price(1.00, 1e6, "events (64 KB chunks)", "eventbridge: read 2026-12-07")
    archive_processed: Price = Price(0.10, 1, "GB archived", "eventbridge: read 2026-12-07")
    archive_stored: Price = Price(0.023, 1, "GB-month", "eventbridge: read 2026-12-07")
    scheduler: Price = Price(1.00, 1e6, "invocations", "eventbridge scheduler: read 2026-12-07")
    sqs_fifo: Price = Price(0.50, 1e6, "requests (64 KB chunks)", "sqs: read 2026-12-07")
    # On-demand throughput was halved on 2024-11-01 (from $1.25 and $0.25 per million).
    dynamodb_write: Price = Price(
        0.625, 1e6, "write request units", "dynamodb: read 2026-12-07, after the Nov 2024 cut"
    )
    dynamodb_read: Price = Price(0.125, 1e6, "read request units", "dynamodb: read 2026-12-07, after the Nov 2024 cut")
    state_transition: Price = Price(0.025, 1e3, "state transitions", "step-functions: read 2026-12-07")
    custom_metric: Price = Price(0.30, 1, "metrics per month (first 10,000)", "cloudwatch: read 2026-12-07")
    alarm: Price = Price(0.10, 1, "standard alarms per month", "cloudwatch: known")
    dashboard: Price = Price(3.00, 1, "dashboards per month", "cloudwatch: read 2026-12-07")
    log_ingestion: Price = Price(0.50, 1, "GB ingested", "cloudwatch: read 2026-12-07")
    xray_trace: Price = Price(5.00, 1e6, "traces recorded", "xray: known")
    sns_email: Price = Price(2.00, 1e5, "email notifications", "sns: known")
    kms_key: Price = Price(1.00, 1, "customer managed keys per month", "kms: known")
    secret: Price = Price(0.40, 1, "secrets per month", "secrets-manager: known")
    secret_calls: Price = Price(0.05, 1e4, "API calls", "secrets-manager: known")
    nat_hour: Price = Price(0.045, 1, "NAT gateway hours", "vpc: read 2026-12-07")
    nat_gb: Price = Price(0.045, 1, "GB through the NAT gateway", "vpc: read 2026-12-07")
    endpoint_hour: Price = Price(0.01, 1, "interface endpoint hours per AZ", "privatelink: read 2026-12-07")
    transfer_out_gb: Price = Price(0.09, 1, "GB out to the internet", "ec2 data transfer: read 2026-12-07")
    # Route 53 health checks, per health check and month (non-AWS endpoint: the sites are not in AWS).
    r53_check_aws: Price = Price(0.50, 1, "health checks of AWS endpoints", "route53: known")
    r53_check_other: Price = Price(0.75, 1, "health checks of non-AWS endpoints", "route53: known")
    r53_option_aws: Price = Price(1.00, 1, "optional features, AWS endpoint", "route53: known")
    r53_option_other: Price = Price(2.00, 1, "optional features, non-AWS endpoint", "route53: known")


PRICES = Prices()
