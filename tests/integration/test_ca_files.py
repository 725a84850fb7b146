"""A private CA named by `ca_file`, relative to the config file: HTTP checks (a loopback HTTPS server) and the
vCenter (vcsim behind TLS with a certificate of that CA) trust it, and only where the config says so."""

from __future__ import annotations

import asyncio
import copy
import secrets
import ssl
import threading
from collections.abc import Iterator
from functools import partial
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import trustme
import yaml

from dcwatch.adapters.probers import probe_round
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import read_vcenter
from dcwatch.config import Config, load_config
from dcwatch.detection.checks import site_checks
from dcwatch.errors import VcenterRefused
from dcwatch.local.cloud import free_port
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.vcsim import VcsimProcess
from tests.helpers import Hello

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def private_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def https_url(private_ca: trustme.CA) -> Iterator[str]:
    """HTTPS on loopback with a certificate for 127.0.0.1 from a CA no system trusts."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/health"
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def config_beside(folder: Path, edit: Any) -> Config:
    """The demo config, changed by `edit`, written to `folder`/dcwatch.yaml and loaded from there."""
    doc = copy.deepcopy(yaml.safe_load(DEMO_CONFIG.read_text(encoding="utf-8")))
    edit(doc)
    path = folder / "dcwatch.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return load_config(path)


def with_check(folder: Path, check: dict[str, Any]) -> Config:
    return config_beside(folder, lambda doc: doc["sites"][0].__setitem__("checks", [check]))


def probe(config: Config) -> tuple[bool, str]:
    [result] = probe_round(site_checks(config, "dc-a"), Credentials, vantage="test", round_id="r", deadline_s=10)
    return result.ok, result.reason


def test_an_http_check_trusts_the_private_ca_its_ca_file_names_beside_the_config(private_ca, https_url, tmp_path):
    (tmp_path / "certs").mkdir()
    private_ca.cert_pem.write_to_path(str(tmp_path / "certs" / "shop-ca.pem"))
    check = {"name": "shop", "url": https_url, "ca_file": "certs/shop-ca.pem"}
    config = with_check(tmp_path, check)
    assert config.site("dc-a").checks[0].ca_file == str(tmp_path / "certs" / "shop-ca.pem")  # type: ignore[union-attr]
    assert probe(config) == (True, "")
    assert probe(with_check(tmp_path, {"name": "shop", "url": https_url})) == (
        False,
        "TLS certificate refused: unable to get local issuer certificate",
    )


def test_an_http_check_whose_ca_file_is_no_certificate_fails_naming_the_file(https_url, tmp_path):
    (tmp_path / "ca.pem").write_text("not a certificate", encoding="utf-8")
    ok, reason = probe(with_check(tmp_path, {"name": "shop", "url": https_url, "ca_file": "ca.pem"}))
    assert not ok and reason.startswith(f"ca_file '{tmp_path / 'ca.pem'}' unusable")


class TlsFront:
    """TLS on a loopback port, every connection forwarded as it is to vcsim's http port: the project's vcsim
    serves http only, and a vCenter behind a private CA is what `ca_file` is for."""

    def __init__(self, context: ssl.SSLContext, upstream: int):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="tls-front", daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(partial(self._forward, upstream), "127.0.0.1", 0, ssl=context), self.loop
        ).result(5)
        self.port = int(self.server.sockets[0].getsockname()[1])

    async def _forward(self, upstream: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        except OSError:
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await asyncio.wait_for(source.read(65536), 30):
                    sink.write(data)
                    await sink.drain()
            except (OSError, TimeoutError):
                pass
            finally:
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            for task in [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]:
                task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


@pytest.fixture
def https_vcenter(private_ca: trustme.CA, tmp_path: Path) -> Iterator[tuple[str, Credentials]]:
    """vcsim behind TLS with a certificate for 127.0.0.1 from the private CA, written beside the config."""
    port = free_port()
    credentials = Credentials("tester", secrets.token_urlsafe(8))
    plain = load_config(DEMO_CONFIG).site("dc-a").vcenter.model_copy(update={"url": f"http://127.0.0.1:{port}/sdk"})
    process = VcsimProcess("dc-a", plain, credentials).start()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    private_ca.issue_cert("127.0.0.1").configure_cert(context)
    front = TlsFront(context, port)
    try:
        private_ca.cert_pem.write_to_path(str(tmp_path / "vcenter-ca.pem"))
        yield f"https://127.0.0.1:{front.port}/sdk", credentials
    finally:
        front.stop()
        process.stop()


def vcenter_config(folder: Path, url: str, **vcenter: Any) -> Config:
    return config_beside(folder, lambda doc: doc["sites"][0]["vcenter"].update(url=url, **vcenter))


def test_the_vcenter_is_read_over_tls_trusting_the_ca_file_beside_the_config(https_vcenter, tmp_path):
    url, credentials = https_vcenter
    vcenter = vcenter_config(tmp_path, url, ca_file="vcenter-ca.pem").site("dc-a").vcenter
    assert read_vcenter(vcenter, credentials, 10).hosts


def test_a_vcenter_whose_ca_nobody_named_is_refused_at_the_handshake(https_vcenter, tmp_path):
    url, credentials = https_vcenter
    with pytest.raises(VcenterRefused, match="refused the TLS handshake"):
        read_vcenter(vcenter_config(tmp_path, url).site("dc-a").vcenter, credentials, 10)


def test_a_vcenter_ca_file_that_cannot_be_read_is_a_refusal_naming_it(https_vcenter, tmp_path):
    url, credentials = https_vcenter
    vcenter = vcenter_config(tmp_path, url, ca_file="missing.pem").site("dc-a").vcenter
    with pytest.raises(VcenterRefused, match="ca_file '.*missing.pem' unusable: No such file"):
        read_vcenter(vcenter, credentials, 10)
