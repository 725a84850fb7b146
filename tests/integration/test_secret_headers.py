"""Tokens of checks and hooks live in Secrets Manager (moto), not in the config file: `headers_secret` names a
secret holding the headers, which reach a real loopback server; a secret that could smuggle anything else is
refused before any request is sent."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from moto import mock_aws

from dcwatch.config import ConfigError, Hook, parse_config
from dcwatch.detection.checks import site_checks
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.runtime import App, Settings
from tests.helpers import moto_credentials
from tests.hook_server import HookServer

pytestmark = pytest.mark.integration

TOKEN = "Bearer t0ken-that-must-stay-out-of-the-file"
SECRET = "dcwatch/shop-token"


@pytest.fixture(scope="module")
def server() -> Iterator[HookServer]:
    running = HookServer().start()
    yield running
    running.stop()


@pytest.fixture
def secretsmanager(monkeypatch) -> Iterator[Any]:
    moto_credentials(monkeypatch, "eu-central-1")
    with mock_aws():
        client = boto3.client("secretsmanager")
        client.create_secret(Name=SECRET, SecretString=json.dumps({"Authorization": TOKEN}))
        yield client


def app_with(tmp_path: Path, checks: list[dict[str, Any]]) -> tuple[App, str]:
    """The demo config with these site checks, written to a file as an operator would; the app and the file's text."""
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    doc["sites"][0]["checks"] = checks
    path = tmp_path / "dcwatch.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return App(Settings(config_path=str(path))), path.read_text(encoding="utf-8")


def shop_check(server: HookServer, name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "url": server.url(f"/hook/{name}"), "method": "POST", "timeout_s": 2, **extra}


def probe(app: App) -> dict[str, tuple[bool, str]]:
    results = app.probe(site_checks(app.config, "dc-a"), "r1", deadline_s=5, vantage="test")
    return {r.check: (r.ok, r.reason) for r in results}


def test_a_check_sends_the_headers_of_its_secret_and_the_config_file_holds_no_token(server, secretsmanager, tmp_path):
    app, text = app_with(tmp_path, [shop_check(server, "shop", headers={"X-Probe": "dcwatch"}, headers_secret=SECRET)])
    assert TOKEN not in text
    assert probe(app) == {"shop": (True, "")}
    assert server.headers["shop"]["Authorization"] == TOKEN
    assert server.headers["shop"]["X-Probe"] == "dcwatch"


@pytest.mark.parametrize(
    ("secret", "refusal"),
    [
        ("not json", "must be a JSON object of header names to values"),
        (json.dumps(["Authorization", TOKEN]), "must be a JSON object of header names to values"),
        (json.dumps({"Authorization": TOKEN + "\r\nX-Admin: yes"}), "the value of Authorization must be text on one"),
        (json.dumps({"Authorization: x\r\nX-Admin": "yes"}), "is not a header name"),
        (json.dumps({"Authorization": 42}), "the value of Authorization must be text on one line"),
    ],
)
def test_a_headers_secret_that_is_not_plain_headers_fails_the_check_unsent_and_unquoted(
    server, secretsmanager, tmp_path, secret, refusal
):
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString=secret)
    app, _ = app_with(tmp_path, [shop_check(server, "shop-bad", headers_secret=SECRET)])
    [(ok, reason)] = probe(app).values()
    assert not ok and reason.startswith(f"headers_secret {SECRET}") and refusal in reason
    assert TOKEN not in reason and "shop-bad" not in server.calls


def test_a_headers_secret_nobody_can_read_fails_the_check_naming_the_secret(server, secretsmanager, tmp_path):
    app, _ = app_with(tmp_path, [shop_check(server, "shop-unread", headers_secret="dcwatch/missing")])
    assert probe(app) == {
        "shop-unread": (False, "headers_secret dcwatch/missing cannot be read: ResourceNotFoundException")
    }
    assert "shop-unread" not in server.calls


def test_an_http_hook_authenticates_with_the_headers_of_its_secret(server, secretsmanager, tmp_path):
    app, _ = app_with(tmp_path, [])
    hook = Hook(name="warm-cache", url=server.url("/hook/warm-cache"), timeout_s=2, headers_secret=SECRET)
    result = app.hooks.run(hook, {"incidentId": "inc-1"})
    assert result.ok, result.detail
    assert server.headers["warm-cache"]["Authorization"] == TOKEN


def test_an_http_hook_whose_secret_is_unusable_is_not_called_and_fails_saying_why(server, secretsmanager, tmp_path):
    secretsmanager.put_secret_value(SecretId=SECRET, SecretString="{}")
    app, _ = app_with(tmp_path, [])
    hook = Hook(name="flush-cdn", url=server.url("/hook/flush-cdn"), timeout_s=2, headers_secret=SECRET)
    result = app.hooks.run(hook, {"incidentId": "inc-1"})
    assert not result.ok and f"not called: headers_secret {SECRET} must be a JSON object" in result.detail
    assert "flush-cdn" not in server.calls


def test_a_lambda_hook_with_a_headers_secret_is_a_config_error_naming_its_path():
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    doc["sites"][1]["groups"] = [
        {"group": 1, "pre_power_on": [{"name": "drain", "function": "drain-lb", "headers_secret": SECRET}]}
    ]
    with pytest.raises(ConfigError) as raised:
        parse_config(doc, "hooks.yaml")
    [(path, message)] = raised.value.problems
    assert path == "sites[1].groups[0].pre_power_on[0]"
    assert message.startswith("headers_secret: only an HTTP hook (url) sends headers")


def test_a_headers_secret_that_is_the_vcenter_login_is_a_config_error_naming_its_path():
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    login = doc["sites"][1]["vcenter"]["credentials_secret"]
    doc["sites"][0]["checks"] = [{"name": "leak", "url": "https://collector.example/", "headers_secret": login}]
    with pytest.raises(ConfigError) as raised:
        parse_config(doc, "leak.yaml")
    assert raised.value.problems == [
        (
            "sites[0].checks[0].headers_secret",
            f"{login!r} is the secret of sites.dc-b.vcenter.credentials_secret (sent as headers it would leave): "
            "give the headers a secret of their own",
        )
    ]
