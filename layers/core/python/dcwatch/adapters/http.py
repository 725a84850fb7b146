"""HTTP positive checks over the standard library: status and body text, within a timeout."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.request

from dcwatch.checks import Outcome
from dcwatch.config import HttpCheck

MAX_BODY = 64 * 1024
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_check(check: HttpCheck) -> Outcome:
    request = urllib.request.Request(check.url, headers={"User-Agent": "dcwatch-probe"})
    try:
        with _opener.open(request, timeout=check.timeout_s) as response:
            status, body = response.status, response.read(MAX_BODY)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(MAX_BODY) if exc.fp else b""
    except TimeoutError:
        return Outcome(False, f"timeout after {check.timeout_s:g} s")
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return Outcome(False, f"timeout after {check.timeout_s:g} s")
        if isinstance(reason, ConnectionRefusedError):
            return Outcome(False, "connection refused")
        if isinstance(reason, ssl.SSLError):
            return Outcome(False, f"TLS error: {reason.reason or reason}")
        return Outcome(False, f"unreachable: {reason}")
    except (ConnectionError, OSError) as exc:
        return Outcome(False, f"connection error: {exc}")
    if status not in check.expect_status:
        return Outcome(False, f"status {status}")
    if check.body_contains is not None and check.body_contains.encode() not in body:
        return Outcome(False, f"body missing {check.body_contains!r}")
    return Outcome(True)
