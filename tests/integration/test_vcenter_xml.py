"""A vCenter's answers are untrusted XML: a proxy on loopback in front of vcsim adds a DTD to what vcsim says
(an XML bomb, an external entity, an entity that forges a value); each is refused, naming why, before pyVmomi
reads anything. Through the same proxy unchanged, the same read works."""

from __future__ import annotations

import http.client
import secrets
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.vsphere import read_vcenter
from dcwatch.config import load_config
from dcwatch.errors import VcenterRefused
from dcwatch.local.cloud import free_port
from dcwatch.local.demo import DEMO_CONFIG
from dcwatch.local.vcsim import VcsimProcess

pytestmark = pytest.mark.integration

Rewrite = Callable[[str, bytes], bytes]
LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 6))
DTDS = {
    "billion laughs": f'<!DOCTYPE soapenv:Envelope [<!ENTITY lol0 "lol">{LAUGHS}]>',
    "external entity": '<!DOCTYPE soapenv:Envelope [<!ENTITY host SYSTEM "file:///etc/hostname">]>',
    "forged value": '<!DOCTYPE soapenv:Envelope [<!ENTITY name "forged">]>',
}


def with_dtd(dtd: str, path_part: str) -> Rewrite:
    """Puts `dtd` after the XML declaration of every answer whose path holds `path_part`."""

    def rewrite(path: str, body: bytes) -> bytes:
        if path_part not in path:
            return body
        declaration, sep, rest = body.partition(b"?>")
        return declaration + sep + dtd.encode() + rest if sep else dtd.encode() + body

    return rewrite


class Relay(BaseHTTPRequestHandler):
    """Forwards each request to vcsim and answers with what it said, rewritten by the server's `rewrite`."""

    protocol_version = "HTTP/1.1"
    server: RewritingProxy

    def _relay(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=10)
        try:
            skip = {"host", "content-length", "connection"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skip}
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            data = self.server.rewrite(self.path, response.read())
            self.send_response(response.status)
            for key, value in response.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        finally:
            upstream.close()

    do_GET = do_POST = _relay  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        return


class RewritingProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: int):
        super().__init__(("127.0.0.1", 0), Relay)
        self.upstream = upstream
        self.rewrite: Rewrite = lambda path, body: body


@pytest.fixture
def proxied_vcenter() -> Iterator[tuple[Any, Credentials, RewritingProxy]]:
    port = free_port()
    credentials = Credentials("tester", secrets.token_urlsafe(8))
    vcenter = load_config(DEMO_CONFIG).site("dc-a").vcenter
    process = VcsimProcess("dc-a", vcenter.model_copy(update={"url": f"http://127.0.0.1:{port}/sdk"}), credentials)
    process.start()
    proxy = RewritingProxy(port)
    thread = threading.Thread(target=proxy.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}/sdk"
        yield vcenter.model_copy(update={"url": url}), credentials, proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)
        process.stop()


def test_through_the_proxy_unchanged_the_vcenter_reads_as_ever(proxied_vcenter):
    vcenter, credentials, _ = proxied_vcenter
    assert read_vcenter(vcenter, credentials, 10).hosts


@pytest.mark.parametrize("attack", sorted(DTDS))
def test_a_soap_answer_with_a_dtd_is_refused_before_pyvmomi_reads_it(proxied_vcenter, attack):
    vcenter, credentials, proxy = proxied_vcenter
    proxy.rewrite = with_dtd(DTDS[attack], "/sdk")
    with pytest.raises(VcenterRefused, match=r"vCenter answered XML defusedxml refuses \(DTDForbidden"):
        read_vcenter(vcenter, credentials, 10)


def test_a_versions_document_with_a_dtd_is_refused_too(proxied_vcenter):
    vcenter, credentials, proxy = proxied_vcenter
    proxy.rewrite = with_dtd(DTDS["billion laughs"], "vimServiceVersions.xml")
    with pytest.raises(VcenterRefused, match="DTDForbidden"):
        read_vcenter(vcenter, credentials, 10)
