"""The heartbeat over the inter-site link: a small HTTP server on each agent and its client.

HTTP carries the signed messages of `dcwatch.agent.heartbeat`; authentication is the HMAC, both ways
(the answer is signed too, and names the nonce it answers). Refusals are logged, structured, with the
peer's address and the reason; the sender gets the reason code, never more.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlparse

from dcwatch.agent.heartbeat import (
    MAX_MESSAGE_BYTES,
    SIGNATURE_HEADER,
    Message,
    Refused,
    Sequence,
    Verifier,
    answer,
    encode,
    heartbeat,
)
from dcwatch.observability import logger

PATH = "/heartbeat"
REQUEST_TIMEOUT_S = 2.0  # a peer that connects and stays silent holds one server thread this long at most


class PeerLink:
    """Both ends of this agent's heartbeat: serve the peer's heartbeats, send ours, remember contact."""

    def __init__(
        self,
        *,
        site: str,
        agent_id: str,
        peer_site: str,
        peer_url: str,
        key: bytes,
        max_skew_s: float,
        timeout_s: float,
        last_sequence: int = 0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ):
        self.site, self.agent_id, self.peer_site, self.peer_url = site, agent_id, peer_site, peer_url
        self._key, self._timeout_s, self._clock = key, timeout_s, clock
        self._verifier = Verifier(key, peer_site, max_skew_s, last_sequence)
        self._sequence = Sequence()
        self._lock = threading.Lock()
        self.last_heartbeat_at: datetime | None = None  # the peer's last heartbeat we accepted
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def set_key(self, key: bytes) -> None:
        with self._lock:
            self._key = key
            self._verifier.set_key(key)

    @property
    def last_peer_sequence(self) -> int:
        return self._verifier.last_sequence

    def receive(self, body: bytes, signature: str | None, source: str) -> tuple[int, bytes, str | None]:
        """(status, body, signature) to send back to a heartbeat."""
        now = self._clock()
        try:
            with self._lock:
                message = self._verifier.accept_heartbeat(body, signature, now)
                self.last_heartbeat_at = now
                reply = answer(self.site, self.agent_id, self._sequence.next(), message, now)
                reply_body, reply_signature = encode(self._key, reply)
        except Refused as refused:
            logger.warning(
                "heartbeat refused",
                site=self.site,
                peer=self.peer_site,
                source=source,
                reason=refused.reason,
                detail=refused.detail,
            )
            status = 401 if refused.reason == "bad signature" else 409
            return status, json.dumps({"refused": refused.reason}).encode(), None
        return 200, reply_body, reply_signature

    def send(self) -> Message:
        """One heartbeat to the peer; its signed answer, or Refused / OSError saying why not."""
        now = self._clock()
        with self._lock:
            message = heartbeat(self.site, self.agent_id, self._sequence.next(), now)
        with self._lock:
            body, signature = encode(self._key, message)
        url = urlparse(self.peer_url)
        connection = http.client.HTTPConnection(url.hostname or "", url.port or 80, timeout=self._timeout_s)
        try:
            connection.request(
                "POST", PATH, body=body, headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            )
            response = connection.getresponse()
            reply = response.read(MAX_MESSAGE_BYTES + 1)
            reply_signature = response.getheader(SIGNATURE_HEADER)
        except http.client.HTTPException as exc:
            raise OSError(f"peer {self.peer_site}: {type(exc).__name__}") from None
        finally:
            connection.close()
        if response.status != 200:
            try:
                why = str(json.loads(reply).get("refused", "")) or f"status {response.status}"
            except (ValueError, AttributeError):
                why = f"status {response.status}"
            raise Refused("refused by the peer", why)
        with self._lock:
            return self._verifier.accept_answer(reply, reply_signature, self._clock(), message.nonce)

    def start(self, listen: str) -> PeerLink:
        host, _, port = listen.rpartition(":")
        link = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S
            server_version = "dcwatch-agent"
            sys_version = ""

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                length = int(self.headers.get("Content-Length") or 0)
                if self.path != PATH or not 0 < length <= MAX_MESSAGE_BYTES:
                    self._send(404 if self.path != PATH else 413, b'{"refused": "bad request"}', None)
                    return
                status, body, signature = link.receive(
                    self.rfile.read(length), self.headers.get(SIGNATURE_HEADER), self.client_address[0]
                )
                self._send(status, body, signature)

            def _send(self, status: int, body: bytes, signature: str | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if signature:
                    self.send_header(SIGNATURE_HEADER, signature)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
                pass  # refusals are logged by PeerLink.receive, structured

        server = ThreadingHTTPServer((host.strip("[]"), int(port)), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._thread.start()
        return self

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
