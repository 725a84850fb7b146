"""What a vCenter fault says about its site: only no TCP connection at all reads as "unreachable"."""

from __future__ import annotations

import socket
import ssl
from typing import Any

import pytest
from pyVmomi import vim

import dcwatch.adapters.vsphere.session as vsphere
from dcwatch.adapters.secrets import Credentials
from dcwatch.config import VCenter
from dcwatch.errors import TransientError, VcenterRefused, VcenterUnreachable

VCENTER = VCenter(url="https://vcenter-a.example/sdk", credentials_secret="vc/a")
CREDENTIALS = Credentials("svc-dcwatch", "secret")


def no_connection(error: OSError):
    def connect(address: Any, timeout: float) -> socket.socket:
        raise error

    return connect


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        socket.gaierror(-2, "Name or service not known"),
        OSError(113, "No route to host"),
    ],
    ids=["refused", "connect timeout", "name not resolved", "no route"],
)
def test_no_tcp_connection_is_an_unreachable_vcenter(monkeypatch, error):
    monkeypatch.setattr(vsphere.socket, "create_connection", no_connection(error))
    session = vsphere.vcenter_session(VCENTER, CREDENTIALS, timeout_s=1)
    with pytest.raises(VcenterUnreachable, match="vCenter https://vcenter-a.example/sdk unreachable"), session:
        pass


def failing_login(error: BaseException):
    def connect(**kwargs: Any) -> Any:
        raise error

    return connect


@pytest.mark.parametrize(
    ("error", "expected", "says"),
    [
        (vim.fault.InvalidLogin(), VcenterRefused, "refused the login of svc-dcwatch"),
        (vim.fault.NoPermission(), VcenterRefused, "refused the login of svc-dcwatch"),
        (ssl.SSLCertVerificationError("certificate verify failed"), VcenterRefused, "refused the TLS handshake"),
        (TimeoutError("timed out"), TransientError, "connected, then did not answer within 1 s"),
        (ConnectionResetError(104, "Connection reset by peer"), TransientError, "connected, then failed"),
        (vim.fault.HostConnectFault(msg="cut"), TransientError, "connected, then failed: cut"),
        (ConnectionRefusedError(111, "Connection refused"), VcenterUnreachable, "unreachable"),
    ],
    ids=["bad password", "no permission", "tls", "slow", "reset", "cut mid-login", "gone since the first connection"],
)
def test_after_a_connection_a_fault_is_a_refusal_or_worth_a_retry_never_unreachable(monkeypatch, error, expected, says):
    # Given a vCenter that answered the version lookup over TCP
    monkeypatch.setattr(vsphere, "api_version", lambda *args, **kwargs: "vim.version.version9")
    monkeypatch.setattr(vsphere, "Connect", failing_login(error))

    # When the login fails, then the error says what it says about the site
    session = vsphere.vcenter_session(VCENTER, CREDENTIALS, timeout_s=1)
    with pytest.raises(expected, match=says) as raised, session:
        pass
    assert type(raised.value) is expected
