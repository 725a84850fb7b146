"""Smoke test of the artifact: the template's handlers run from nothing but their code and layers.

The layers are built as a deploy builds them, but for this machine's interpreter (the deps layer with
the same pip options, for the local CPython and platform); each function's code dir and the core layer
come from the synthesized cloud assembly. The handlers run in a clean interpreter (`python -S -I`, only
those directories on sys.path) against a moto server on loopback.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

import dcwatch
from dcwatch.local.children import die_with_parent, wait_for_port
from dcwatch.local.cloud import create_tables, free_port
from dcwatch.local.queues import sqs_event
from dcwatch.topology import VANTAGE_PUBLIC
from dcwatch.wiring import TABLES
from dcwatch_infra import constants
from dcwatch_infra.layers import install_dependencies, pip_options
from tests.helpers import load_event
from tests.infrastructure.lambda_sandbox import FunctionCode, Layers, environment, function_codes, layer_dirs, run
from tests.infrastructure.lambda_sandbox import runtime_provided as runtime_provided_dir
from tests.infrastructure.synth import Synth

pytestmark = pytest.mark.infrastructure

REGION = "us-east-1"
LOCAL_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
# The Lambda platforms, for this machine's architecture: the same manylinux tags, the same wheels otherwise.
LOCAL_PLATFORMS = tuple(p.replace("aarch64", platform.machine()) for p in constants.LAMBDA_PLATFORMS)


@pytest.fixture(scope="module")
def layers(demo: Synth, tmp_path_factory: pytest.TempPathFactory) -> Layers:
    deps = tmp_path_factory.mktemp("deps-layer") / "python"
    install_dependencies(deps, pip_options(LOCAL_PYTHON, LOCAL_PLATFORMS))
    core, config = layer_dirs(demo)
    return Layers(deps, core, config, runtime_provided_dir(tmp_path_factory.mktemp("lambda-runtime")))


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=die_with_parent,
    )
    try:
        wait_for_port("127.0.0.1", port, 30, server)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


def aws_environment(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "smoke",
        "AWS_SECRET_ACCESS_KEY": "smoke",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }


@pytest.fixture(scope="module")
def deployment(demo: Synth, moto_endpoint: str) -> dict[str, str]:
    """What CloudFormation creates (and the operator's vCenter secrets), in moto; the values by env name."""

    def client(service: str):
        return boto3.client(service, endpoint_url=moto_endpoint, region_name=REGION, **credentials)

    credentials = {"aws_access_key_id": "smoke", "aws_secret_access_key": "smoke"}
    bus = constants.bus_name(demo.config.name)
    client("events").create_event_bus(Name=bus)
    tables = create_tables(client("dynamodb"), f"smoke-{demo.config.name}")
    topic = client("sns").create_topic(Name="smoke-alerts")["TopicArn"]
    for site in demo.config.sites:
        secret = json.dumps({"username": "smoke", "password": "smoke"})
        client("secretsmanager").create_secret(Name=site.vcenter.credentials_secret, SecretString=secret)
    return {
        constants.ENV_BUS_NAME: bus,
        constants.ENV_TOPIC_ARN: topic,
        constants.ENV_STATE_MACHINE_ARN: f"arn:aws:states:{REGION}:123456789012:stateMachine:smoke",
        **{spec.env: tables[spec.key] for spec in TABLES},
    }


def by_code(functions: list[FunctionCode]) -> dict[Path, list[FunctionCode]]:
    grouped: dict[Path, list[FunctionCode]] = defaultdict(list)
    for function in functions:
        grouped[function.code].append(function)
    return dict(grouped)


def test_every_handler_the_template_names_imports_and_probe_and_evaluate_run_from_the_layers_alone(
    demo: Synth, layers: Layers, moto_endpoint: str, deployment: dict[str, str], tmp_path: Path
):
    # Given the functions of the demo template, each function's code dir as the cloud assembly stages it
    functions = function_codes(demo)
    probe, evaluate = demo.function_id("Probe"), demo.function_id("Evaluate")
    assert {probe, evaluate} <= {f.logical_id for f in functions}
    published = load_event("samples/ProbeRound.json")
    now = datetime.now(UTC).isoformat()
    published["detail"] |= {"vantage": VANTAGE_PUBLIC, "startedAt": now}
    for result in published["detail"]["results"]:
        result |= {"vantage": VANTAGE_PUBLIC, "observedAt": now}
    message = {"MessageId": "m1", "ReceiptHandle": "h1", "Body": json.dumps(published), "Attributes": {}}
    events = {probe: {"id": "smoke"}, evaluate: sqs_event([message], "arn:aws:sqs:us-east-1:1:rounds.fifo")}
    # One probe round, not a schedule period's worth of them (as the local runtime calls it).
    one_round = {constants.ENV_SCHEDULE_PERIOD_S: str(demo.config.probe.interval_s)}

    # When each code dir's handlers are imported, and the probe and the evaluator called once, in a clean interpreter
    reports = {}
    for code, group in by_code(functions).items():
        called = [f for f in group if f.logical_id in events]
        env = aws_environment(moto_endpoint) | (environment(called[0], deployment | one_round) if called else {})
        calls = [f.call(events[f.logical_id]) for f in called]
        done = run(code, sorted({f.handler for f in group}), layers, env, tmp_path, calls)
        assert done.returncode == 0, f"{[f.logical_id for f in group]} from {code.name}:\n{done.stderr}"
        assert done.report["outside"] == [], "imported from outside the layers and the standard library"
        reports.update({f.logical_id: done.report for f in group})

    # Then every handler imported, the probe published a result per check and the evaluator recorded one
    assert all(f.handler in reports[f.logical_id]["imported"] for f in functions)
    rounds = reports[probe]["results"]["app.handler"]["rounds"]
    assert rounds and all(r["published"] == r["checks"] > 0 and r["lost"] == 0 for r in rounds)
    assert reports[evaluate]["results"]["app.handler"] == {"batchItemFailures": []}
    state = boto3.client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="smoke",
        aws_secret_access_key="smoke",
    ).scan(TableName=deployment[TABLES[0].env])
    assert state["Count"] > 0


def handlers_of(demo: Synth, key: str) -> tuple[Path, str]:
    function = next(f for f in function_codes(demo) if f.logical_id == demo.function_id(key))
    return function.code, function.handler


def test_a_dependency_missing_from_the_layer_fails_naming_the_handler(demo: Synth, layers: Layers, tmp_path: Path):
    # Given a deps layer like the real one but without pydantic
    partial = tmp_path / "python"
    partial.mkdir()
    for entry in layers.deps.iterdir():
        if not entry.name.startswith("pydantic"):
            (partial / entry.name).symlink_to(entry)
    code, handler = handlers_of(demo, "Evaluate")

    # When the evaluator's handler is imported from it, Then the import fails and says which handler and package
    done = run(code, [handler], replace(layers, deps=partial), {}, tmp_path)
    assert done.returncode == 1
    assert f"{handler}: cannot import: ModuleNotFoundError: No module named 'pydantic'" in done.stderr


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        ("app.no_such_handler", "AttributeError: module 'app' has no attribute 'no_such_handler'"),
        ("no_such_module.handler", "ModuleNotFoundError: No module named 'no_such_module'"),
    ],
)
def test_a_handler_path_that_does_not_exist_fails(
    demo: Synth, layers: Layers, tmp_path: Path, handler: str, error: str
):
    code, _ = handlers_of(demo, "Probe")
    done = run(code, [handler], layers, {}, tmp_path)
    assert done.returncode == 1
    assert f"{handler}: cannot import: {error}" in done.stderr


def test_a_handler_that_imports_the_local_runtime_fails_because_the_core_layer_leaves_it_out(
    layers: Layers, tmp_path: Path
):
    # Given a function whose module imports dcwatch.local, which is on this venv's path but not in the core layer
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("from dcwatch.local import cloud\n\nhandler = cloud\n")
    assert (Path(dcwatch.__file__).parent / "local").is_dir()
    assert not (layers.core / "dcwatch" / "local").exists()

    # When it is imported from the layers, Then it fails like it would in Lambda
    done = run(code, ["app.handler"], layers, {}, tmp_path)
    assert done.returncode == 1
    assert "app.handler: cannot import: ModuleNotFoundError: No module named 'dcwatch.local'" in done.stderr
