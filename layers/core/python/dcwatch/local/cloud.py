"""AWS on one machine: moto in server mode with the resources the CDK stack creates in AWS.

Differences from AWS, and why: moto delivers rule matches to SQS but not to Lambda, so every rule
gets a queue and a dispatcher invokes the rule's function with the event; moto does not fire
schedules, so the local runtime drives the probe schedule itself; Step Functions executes the
same ASL, its Lambda tasks answered in-process by `LocalLambdas`; moto's conditional writes are not
atomic under threads, so its server runs with them made atomic (`dcwatch.local.moto_server`).
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import boto3
import requests
from moto.server import ThreadedMotoServer
from moto.stepfunctions.parser.asl.static_analyser import variable_references_static_analyser

from dcwatch import runtime
from dcwatch.adapters.route53 import Route53Dns
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, workflow_timeout_s
from dcwatch.local.children import die_with_parent, wait_for_port
from dcwatch.local.lambdas import ACCOUNT, LocalLambdas
from dcwatch.local.zone_server import ZoneServer
from dcwatch.recovery.plan import records_at
from dcwatch.wiring import RULES, SITE_STATUS_PATTERN, TABLES, function, message_group, render_failover_definition
from dcwatch.zones import ENV_HOSTED_ZONE_IDS, dns_zones, encode_zone_ids

REGION = "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/dcwatch-local"
# Set here and not in AWS, with the reason.
LOCAL_ONLY_ENV = {"DCWATCH_DNS_RESOLVER": "moto lacks Route 53 TestDNSAnswer: answers come from a loopback zone server"}


def analyse_each_definition_once() -> None:
    """moto's Step Functions (in this process) parses a whole state machine definition again for its variable
    references on every DescribeExecution and DescribeStateMachine (moto 5: `VariableReferencesStaticAnalyser`),
    some 0.2 s of CPU for the failover ASL: a caller polling an execution took the handlers' CPU. The answer
    depends on the definition alone, so it is worked out once per definition. Idempotent."""
    analyser = variable_references_static_analyser.VariableReferencesStaticAnalyser
    if getattr(analyser.process_and_get, "dcwatch_once", False):
        return
    once = functools.lru_cache(maxsize=32)(analyser.process_and_get)

    def process_and_get(definition: str) -> Any:
        return copy.deepcopy(once(definition))

    process_and_get.dcwatch_once = True  # type: ignore[attr-defined]
    analyser.process_and_get = staticmethod(process_and_get)  # type: ignore[method-assign,assignment]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_tables(dynamodb: Any, prefix: str) -> dict[str, str]:
    """The tables of `dcwatch.wiring.TABLES` as `<prefix>-<key>`; returns table name by key."""
    tables = {spec.key: f"{prefix}-{spec.key.lower()}" for spec in TABLES}
    for spec in TABLES:
        dynamodb.create_table(
            TableName=tables[spec.key],
            KeySchema=[{"AttributeName": key, "KeyType": kind} for key, kind in spec.keys.items()],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"} for key in spec.keys],
            BillingMode="PAY_PER_REQUEST",
        )
        if spec.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=tables[spec.key],
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    return tables


@dataclass
class Resources:
    bus_name: str
    table_name: str
    audit_table_name: str
    locks_table_name: str
    topic_arn: str
    state_machine_arn: str
    rule_queues: dict[str, str] = field(default_factory=dict)
    site_status_queue: str = ""
    notification_queue: str = ""
    zone_ids: dict[str, str] = field(default_factory=dict)


class LocalCloud:
    """Starts moto, points boto3 at it through the environment, and restores everything on stop."""

    def __init__(self, config: Config, config_path: str):
        self.config, self.config_path = config, config_path
        self.prefix = f"dcwatch-{config.name}"
        # Two moto servers share the 2 cores: Step Functions in this process, because its Lambda tasks are
        # answered here by the real handlers; every other service in a process of its own, so that
        # DynamoDB, SQS, EventBridge and the rest do not compete with the handlers for one interpreter.
        self.port, self.sfn_port = free_port(), free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.sfn_endpoint = f"http://127.0.0.1:{self.sfn_port}"
        self._server: ThreadedMotoServer | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}
        self.lambdas: LocalLambdas | None = None
        self.resources: Resources | None = None
        self.zone_server: ZoneServer | None = None

    def _set_env(self, values: dict[str, str]) -> None:
        for key, value in values.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def start(self) -> LocalCloud:
        for noisy in ("werkzeug", "moto"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "dcwatch.local.moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "AWS_DEFAULT_REGION": REGION},
            preexec_fn=die_with_parent,
        )
        analyse_each_definition_once()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.sfn_port, verbose=False)
        self._server.start()
        self._await_process()
        self._set_env(
            {
                "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_SFN": self.sfn_endpoint,
                "AWS_ACCESS_KEY_ID": "local",
                "AWS_SECRET_ACCESS_KEY": "local",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "MOTO_PORT": str(self.sfn_port),
            }
        )
        # moto's backends are process-wide: a server started after another in this process starts empty.
        self.reset()
        self.lambdas = LocalLambdas(self.prefix, REGION)
        self.lambdas.register()
        # moto has no TestDNSAnswer: the workflow verifies answers by asking this server instead.
        self.zone_server = ZoneServer(self.client("route53")).start()
        return self

    def _await_process(self, timeout_s: float = 30) -> None:
        try:
            wait_for_port("127.0.0.1", self.port, timeout_s, self._process)
        except TimeoutError as exc:
            raise RuntimeError(f"moto server did not start: {exc}") from None

    def _execute_state_machines(self) -> None:
        response = requests.post(
            f"{self.sfn_endpoint}/moto-api/config", json={"stepfunctions": {"execute_state_machine": True}}, timeout=5
        )
        response.raise_for_status()

    def reset(self) -> None:
        """Forget every resource and item (moto's reset); `provision` creates the deployment again."""
        for endpoint in (self.endpoint, self.sfn_endpoint):
            requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
        self._execute_state_machines()

    def client(self, service: str) -> Any:
        endpoint = self.sfn_endpoint if service == "stepfunctions" else self.endpoint
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION)

    def provision(self, credentials: dict[str, Credentials]) -> Resources:
        """Create what the stack creates, and set the functions' environment as CDK would."""
        assert self.lambdas is not None, "start() first"
        resources, tables = create_stack(self.client, self.config, self.prefix, self.lambdas, credentials)
        self._set_env(
            {
                "DCWATCH_CONFIG": self.config_path,
                "DCWATCH_BUS_NAME": resources.bus_name,
                **{spec.env: tables[spec.key] for spec in TABLES},
                "DCWATCH_TOPIC_ARN": resources.topic_arn,
                "DCWATCH_STATE_MACHINE_ARN": resources.state_machine_arn,
                "DCWATCH_VANTAGE": self.config.probe.vantage,
                # The local schedule calls the probe every interval: one round per call.
                "DCWATCH_SCHEDULE_PERIOD_S": str(self.config.probe.interval_s),
                "DCWATCH_DNS_RESOLVER": self.zone_server.address if self.zone_server else "",
                ENV_HOSTED_ZONE_IDS: encode_zone_ids(resources.zone_ids),
            }
        )
        runtime.reset()
        self.resources = resources
        return self.resources

    def stop(self) -> None:
        if self.zone_server is not None:
            self.zone_server.stop()
            self.zone_server = None
        if self.lambdas is not None:
            self.lambdas.unregister()
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        runtime.reset()


def create_stack(
    client: Callable[[str], Any],
    config: Config,
    prefix: str,
    lambdas: LocalLambdas,
    credentials: dict[str, Credentials],
) -> tuple[Resources, dict[str, str]]:
    """What the CDK stack creates, created in moto: the bus and its rules (each feeding a queue), the tables, the
    alert topic, the hosted zones and records, the vCenter secrets, the state machine and the schedule; the
    resources, and the tables' names by key."""
    events, sqs, sns = client("events"), client("sqs"), client("sns")

    bus = f"{prefix}-bus"
    events.create_event_bus(Name=bus)

    def queue(name: str, fifo: bool = False) -> tuple[str, str]:
        # EventBridge needs content-based deduplication to send to a FIFO queue (it sends no deduplication id).
        attributes = {"FifoQueue": "true", "ContentBasedDeduplication": "true"} if fifo else {}
        url = sqs.create_queue(QueueName=f"{prefix}-{name}{'.fifo' if fifo else ''}", Attributes=attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    def rule_to_queue(name: str, pattern: dict[str, Any], fifo: bool = False) -> str:
        url, arn = queue(name, fifo)
        target: dict[str, Any] = {"Id": "local", "Arn": arn}
        if fifo:
            target["SqsParameters"] = {"MessageGroupId": message_group(config.name)}
        events.put_rule(Name=f"{prefix}-{name}", EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=f"{prefix}-{name}", EventBusName=bus, Targets=[target])
        return url

    # A rule with a queue (`wiring.QueueSpec`) feeds a FIFO queue here as in AWS; the others feed their
    # function directly in AWS, and a plain queue here (moto delivers no rule matches to Lambda).
    rule_queues = {rule.name: rule_to_queue(rule.name, rule.pattern, rule.queue is not None) for rule in RULES}
    site_status_queue = rule_to_queue("site-status", SITE_STATUS_PATTERN)

    tables = create_tables(client("dynamodb"), prefix)

    topic = sns.create_topic(Name=f"{prefix}-alerts")["TopicArn"]
    for address in config.alerts.email:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=address)
    notification_url, notification_arn = queue("notifications")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=notification_arn)

    route53 = client("route53")
    # The functions get the zones' ids as the stack gives them (`dcwatch.zones`), never a name to look up.
    zone_ids: dict[str, str] = {}
    for zone in dns_zones(config):
        created = route53.create_hosted_zone(Name=zone, CallerReference=f"{prefix}-{zone}")
        zone_ids[zone] = created["HostedZone"]["Id"].split("/")[-1]
    # The records as the active site serves them: weighted and failover ones as their record sets.
    Route53Dns(route53, zone_ids=zone_ids).upsert(
        [s for r in records_at(config, config.active_site) for s in r.record_sets()]
    )

    secrets = client("secretsmanager")
    for site in config.sites:
        creds = credentials[site.name]
        secrets.create_secret(
            Name=site.vcenter.credentials_secret,
            SecretString=json.dumps({"username": creds.username, "password": creds.password}),
        )

    state_machine = client("stepfunctions").create_state_machine(
        name=f"{prefix}-failover",
        definition=render_failover_definition(lambdas.arns(), workflow_timeout_s(config)),
        roleArn=ROLE_ARN,
    )["stateMachineArn"]

    client("scheduler").create_schedule(
        Name=f"{prefix}-probe",
        ScheduleExpression="rate(1 minute)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": lambdas.arn(function("Probe")), "RoleArn": ROLE_ARN},
    )

    resources = Resources(
        bus_name=bus,
        table_name=tables["State"],
        audit_table_name=tables["Audit"],
        locks_table_name=tables["Locks"],
        topic_arn=topic,
        state_machine_arn=state_machine,
        rule_queues=rule_queues,
        site_status_queue=site_status_queue,
        notification_queue=notification_url,
        zone_ids=zone_ids,
    )
    return resources, tables
