"""`dcwatch up` and `dcwatch fault`: the local stack as a playground, driven from a second "terminal" (subprocesses
with the env file sourced), and gone without a trace on Ctrl-C."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import boto3
import pytest
import requests

from dcwatch.adapters.secrets import SecretsManagerCredentials
from dcwatch.config import load_config
from dcwatch.local.fault_channel import CONTROL_FILE
from dcwatch.local.vcsim import power_states
from tests.configs import write_pair_config
from tests.local_up import UpProcess, dcwatch

pytestmark = pytest.mark.integration

READY_WITHIN_S = 150  # moto, two vcsims, the services and the functions on a busy 2-core machine
RUN_FOR_S = 300  # a bound for the process should the test die before Ctrl-C


def listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def service_url(config_path: Path, site: str, service: str) -> str:
    config = load_config(config_path)
    return next(s for s in config.services if s.name == service).sites[site].checks[0].url  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UpProcess, dict[str, str], Path]]:
    directory = tmp_path_factory.mktemp("up")
    config = write_pair_config(directory, name="playground")
    process = UpProcess(config, directory / "run", RUN_FOR_S)
    try:
        env = process.wait_ready(READY_WITHIN_S)
        yield process, env, config
    finally:
        process.kill()


def test_fault_without_a_running_up_exits_2_saying_to_start_it(tmp_path, monkeypatch):
    monkeypatch.delenv("DCWATCH_UP_DIR", raising=False)
    done = dcwatch(["fault", "--run-dir", str(tmp_path), "kill-site", "active"], env=dict(os.environ))
    assert done.returncode == 2
    assert "no `dcwatch up` is running" in done.stderr and "start `dcwatch up`" in done.stderr


def test_the_env_file_points_every_command_at_the_local_stack(up):
    process, env, config = up
    # Given the env file sourced, as a second terminal would
    assert env["DCWATCH_CONFIG"] == str(config.resolve())
    assert env["DCWATCH_UP_DIR"] == str(process.run_dir.resolve())
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SFN"):
        assert urlparse(env[key]).hostname == "127.0.0.1", "loopback only"
    # Then boto3 alone finds the tables and the state machine the names say
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    dynamodb = session.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"])
    for key in ("DCWATCH_TABLE_NAME", "DCWATCH_AUDIT_TABLE_NAME", "DCWATCH_LOCKS_TABLE_NAME"):
        assert dynamodb.describe_table(TableName=env[key])["Table"]["TableStatus"] == "ACTIVE"
    sfn = session.client("stepfunctions", endpoint_url=env["AWS_ENDPOINT_URL_SFN"])
    assert sfn.describe_state_machine(stateMachineArn=env["DCWATCH_STATE_MACHINE_ARN"])["name"].endswith("-failover")
    # And an operator command run with nothing but that environment acts on the local stack, audited
    switched = dcwatch(["automation", "off", "--reason", "playing", "--by", "tester"], env=env)
    assert switched.returncode == 0, switched.stderr
    shown = dcwatch(["automation", "status"], env=env)
    assert shown.returncode == 0 and "off" in shown.stdout and "playing" in shown.stdout


def test_a_stopped_service_refuses_customers_until_started_again(up):
    process, env, config = up
    url = service_url(config, "north", "webshop")
    assert requests.get(url, timeout=5).text.startswith("OK webshop at north")

    # When the operator stops the service of the active site by hand ("active" resolved as in scenarios)
    stopped = dcwatch(["fault", "stop-service", "active", "webshop"], env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert "stop_service" in stopped.stdout

    # Then it refuses connections, and the `up` terminal says what was done, by hand
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)
    process.wait_for("fault_injected", timeout_s=10)
    injected = [line for line in process.lines if "fault_injected" in line]
    assert "webshop" in injected[-1] and "(by hand)" in injected[-1]

    started = dcwatch(["fault", "start-service", "north", "webshop"], env=env)
    assert started.returncode == 0, started.stderr
    assert requests.get(url, timeout=5).text.startswith("OK webshop at north")


def test_a_fault_naming_an_unknown_site_or_service_exits_2_naming_it(up):
    _, env, _ = up
    site = dcwatch(["fault", "stop-service", "atlantis", "webshop"], env=env)
    assert site.returncode == 2 and "unknown site 'atlantis'" in site.stderr
    service = dcwatch(["fault", "stop-service", "north", "bakery"], env=env)
    assert service.returncode == 2 and "unknown service 'bakery'" in service.stderr


def test_a_killed_site_revived_by_hand_has_its_vcenter_back_with_every_vm_off(up):
    """The power returns: the vCenter runs again (and keeps running: the fault channel once started it on the
    request's thread, whose end killed it at once), nothing is powered on, production stays where it is."""
    _, env, config = up
    loaded = load_config(config)
    standby = loaded.other_site(loaded.active_site)
    vcenter = loaded.site(standby).vcenter
    where = (urlparse(vcenter.url).hostname or "", urlparse(vcenter.url).port or 0)

    killed = dcwatch(["fault", "kill-site", "standby"], env=env)
    assert killed.returncode == 0, killed.stderr
    assert not listening(*where)

    revived = dcwatch(["fault", "revive-site", standby], env=env)
    assert revived.returncode == 0, revived.stderr
    assert f"revive_site {standby}" in revived.stdout
    time.sleep(3)
    assert listening(*where), "the revived vCenter died with the request that started it"
    secrets = boto3.client(
        "secretsmanager",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    login = SecretsManagerCredentials(secrets).get(vcenter.credentials_secret)
    names = [vm.name for _, at in loaded.services_at(standby) for vm in at.vms]
    assert power_states(vcenter, login, names) == dict.fromkeys(names, "poweredOff")


def test_ctrl_c_stops_everything_and_nothing_is_left_listening(up):
    process, env, config = up
    control = json.loads((process.run_dir / CONTROL_FILE).read_text())
    loaded = load_config(config)
    addresses = [
        (urlparse(url).hostname or "", urlparse(url).port or 0)
        for url in (
            env["AWS_ENDPOINT_URL"],
            env["AWS_ENDPOINT_URL_SFN"],
            control["url"],
            *(site.vcenter.url for site in loaded.sites),
            service_url(config, "north", "portal"),
        )
    ]
    assert all(listening(*address) for address in addresses)

    assert process.interrupt() == 0, process.output[-3000:]

    assert [address for address in addresses if listening(*address)] == []
    assert not (process.run_dir / CONTROL_FILE).exists() and not (process.run_dir / "env").exists()
    assert "dcwatch up: stopped" in process.output
    assert "Traceback" not in process.output
