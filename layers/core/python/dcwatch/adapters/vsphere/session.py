"""vCenter sessions: the login (its faults told apart by what they say about the site), a session of one's
own for probes (`vcenter_session`), and the sessions a warm Lambda keeps for the failover's steps
(`reused_session`)."""

from __future__ import annotations

import hashlib
import http.client
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import urlparse
from xml.etree import ElementTree

from pyVim.connect import Connect, Disconnect, getSslContext
from pyVmomi import vim, vmodl
from pyVmomi.VmomiSupport import GetServiceVersions, versionIdMap

from dcwatch.adapters import xml_guard
from dcwatch.adapters.secrets import Credentials
from dcwatch.adapters.tls import tls_context
from dcwatch.config import VCenter
from dcwatch.errors import TransientError, VcenterRefused, VcenterUnreachable

xml_guard.install()  # before any answer of a vCenter is parsed: every answer comes through a session made here

MAX_IDLE_SESSIONS = 4  # per vCenter and login, kept for the next use; more are logged out
MAX_VERSIONS_BYTES = 1024 * 1024  # vimServiceVersions.xml is a few KB; a server sending more is not a vCenter


def _connect(url: str, host: str, port: int, timeout_s: float) -> socket.socket:
    """The TCP connection, the one place a vCenter is `VcenterUnreachable`: nothing answered at all."""
    try:
        return socket.create_connection((host, port), timeout=timeout_s)
    except OSError as exc:  # refused, connect timeout, no route, the name not resolved (gaierror)
        raise VcenterUnreachable(f"vCenter {url} unreachable: {error_text(exc)}") from None


def error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def api_version(
    protocol: str,
    host: str,
    port: int,
    path: str,
    context: ssl.SSLContext | None,
    timeout_s: float,
    url: str = "",
) -> str:
    """The newest vim25 API version both pyvmomi and the server speak, asked within `timeout_s`.

    SmartConnect asks the same question without any socket timeout (pyvmomi 9.1), so a vCenter
    that accepts and stays silent would hold its thread for as long as the kernel keeps the socket.
    Its connection tells the faults apart: no TCP connection is `VcenterUnreachable`, a refused TLS
    handshake `VcenterRefused`, anything once connected `TransientError`.
    """
    url = url or f"{protocol}://{host}:{port}{path}"
    connection: http.client.HTTPConnection
    if protocol == "https":
        connection = http.client.HTTPSConnection(host, port, timeout=timeout_s, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout_s)
    sock = _connect(url, host, port, timeout_s)
    try:
        if protocol == "https":
            tls = context or ssl.create_default_context()
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except (ssl.SSLError, ssl.CertificateError) as exc:
                raise VcenterRefused(f"vCenter {url} refused the TLS handshake: {error_text(exc)}") from None
        connection.sock = sock  # http.client sends over the connection made here instead of making its own
        connection.request("GET", f"{path}/vimServiceVersions.xml")
        response = connection.getresponse()
        status, document = response.status, response.read(MAX_VERSIONS_BYTES) if response.status == 200 else b""
    except (OSError, http.client.HTTPException) as exc:
        raise TransientError(f"vCenter {url} connected, then failed: {error_text(exc)}") from None
    finally:
        connection.close()
        sock.close()
    try:
        root = xml_guard.element(document)
    except ElementTree.ParseError:
        root = None
    served = set() if root is None else {v.text for v in root.iter("version")}
    for version in GetServiceVersions("vim25"):
        if versionIdMap[version] in served:
            return str(version)
    raise TransientError(f"vCenter {url} answered (HTTP {status}) but not as a vCenter: starting, or not one")


def _trusted(vcenter: VCenter) -> ssl.SSLContext | None:
    """The system's CAs and the vCenter's `ca_file`; None where TLS is not verified. Never pyVmomi's default
    (no context): it verifies nothing for a vCenter at 127.0.0.1 or localhost."""
    if not vcenter.verify_tls:
        return None
    try:
        return tls_context(vcenter.ca_file)
    except OSError as exc:  # our side's file: the vCenter may be fine, so never a sign that the site is down
        raise VcenterRefused(
            f"vCenter {vcenter.url}: ca_file {vcenter.ca_file!r} unusable: {exc.strerror or error_text(exc)}"
        ) from None


LOGIN_REFUSALS = (vim.fault.InvalidLogin, vim.fault.NoPermission, vim.fault.NotAuthenticated)


def _login(vcenter: VCenter, credentials: Credentials, timeout_s: float) -> Any:
    """A new logged-in session whose every socket operation gives up after `timeout_s`.

    Faults by what they say about the site: `VcenterUnreachable` when no TCP connection could be made,
    `VcenterRefused` for a refused login or TLS handshake, `TransientError` for anything after a connection
    (a timeout, a reset, a fault mid-login): worth retrying, and never a sign that the site is down.
    """
    url = urlparse(vcenter.url)
    secure = url.scheme == "https"
    host, port, path = url.hostname or "", url.port or (443 if secure else 80), url.path or "/sdk"
    context = getSslContext(host, _trusted(vcenter), secure and not vcenter.verify_tls) if secure else None
    version = api_version(url.scheme, host, port, path, context, timeout_s, vcenter.url)
    try:
        si = Connect(
            host=host,
            port=port if secure else -port,  # pyvmomi's way of saying plain http
            user=credentials.username,
            pwd=credentials.password,
            path=path,
            version=version,
            sslContext=context,
            httpConnectionTimeout=timeout_s,
            connectionPoolTimeout=0,
        )
    except LOGIN_REFUSALS:
        raise VcenterRefused(f"vCenter {vcenter.url} refused the login of {credentials.username}") from None
    except (ssl.SSLError, ssl.CertificateError) as exc:
        raise VcenterRefused(f"vCenter {vcenter.url} refused the TLS handshake: {error_text(exc)}") from None
    except (ConnectionRefusedError, socket.gaierror) as exc:
        # Gone between the version lookup and the login: no connection again, as at first.
        raise VcenterUnreachable(f"vCenter {vcenter.url} unreachable: {error_text(exc)}") from None
    except TimeoutError:
        raise TransientError(f"vCenter {vcenter.url} connected, then did not answer within {timeout_s:g} s") from None
    except vim.fault.HostConnectFault as fault:  # how pyvmomi reports a login that timed out or was cut
        raise TransientError(
            f"vCenter {vcenter.url} connected, then failed: {getattr(fault, 'msg', '') or 'connection failed'}"
        ) from None
    except (OSError, http.client.HTTPException, vmodl.MethodFault) as exc:
        raise TransientError(f"vCenter {vcenter.url} connected, then failed: {error_text(exc)}") from None
    return si


def _logout(si: Any) -> None:
    with suppress(Exception):  # the session is gone either way
        Disconnect(si)


@contextmanager
def vcenter_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    """A session of its own, logged out at the end: what a probe's login check proves, it proves each time."""
    si = _login(vcenter, credentials, timeout_s)
    try:
        yield si
    finally:
        _logout(si)


_idle: dict[tuple[str, str, str], list[Any]] = {}
_idle_lock = threading.Lock()


def _pool_key(vcenter: VCenter, credentials: Credentials) -> tuple[str, str, str]:
    """Per vCenter URL and login: a rotated password starts a session of its own."""
    return vcenter.url, credentials.username, hashlib.sha256(credentials.password.encode()).hexdigest()


def _still_valid(si: Any, vcenter: VCenter, timeout_s: float) -> bool:
    """Whether vCenter still knows the idle session `si`, asked over a new TCP connection.

    A new connection because a path that failed meanwhile must fail this use at once, and one that a NAT
    forgot while the Lambda was frozen must not hang it. No TCP connection is `VcenterUnreachable`, one that
    then fails `TransientError`, as at login; only a session vCenter no longer knows means logging in again."""
    si._stub.DropConnections()
    url = urlparse(vcenter.url)
    _connect(vcenter.url, url.hostname or "", url.port or (443 if url.scheme == "https" else 80), timeout_s).close()
    try:
        return si.content.sessionManager.currentSession is not None
    except vim.fault.NotAuthenticated:
        return False
    except (ConnectionError, http.client.HTTPException):
        return False  # e.g. vCenter restarted meanwhile: the login will tell
    except (OSError, vmodl.MethodFault) as exc:
        raise TransientError(f"vCenter {vcenter.url} connected, then failed: {error_text(exc)}") from None


@contextmanager
def reused_session(vcenter: VCenter, credentials: Credentials, timeout_s: float = 10.0) -> Iterator[Any]:
    """A logged-in session, the one an earlier use left if vCenter still knows it: a warm Lambda logs in once.

    Each use has the session to itself (threads of the local runtime share the process); it goes back for the
    next use unless the use failed, which logs it out. Faults as at login (`VcenterUnreachable`, ...)."""
    key = _pool_key(vcenter, credentials)
    si = None
    while si is None:
        with _idle_lock:
            idle = _idle.get(key, [])
            candidate = idle.pop() if idle else None
        if candidate is None:
            si = _login(vcenter, credentials, timeout_s)
        elif _still_valid(candidate, vcenter, timeout_s):
            si = candidate
        else:
            _logout(candidate)
    try:
        yield si
    except BaseException:
        _logout(si)
        raise
    with _idle_lock:
        idle = _idle.setdefault(key, [])
        kept = len(idle) < MAX_IDLE_SESSIONS
        if kept:
            idle.append(si)
    if not kept:
        _logout(si)


def log_out_idle_sessions() -> None:
    """Log out every session kept for reuse (the local runtime at its end, tests)."""
    with _idle_lock:
        sessions = [si for idle in _idle.values() for si in idle]
        _idle.clear()
    for si in sessions:
        _logout(si)
