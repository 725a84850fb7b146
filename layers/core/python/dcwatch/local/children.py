"""Processes the local runtime starts (moto, vcsim): they end with it, also when it is killed outright,
and the runtime waits for each to listen before it goes on."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import time

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` of a child: Linux sends it SIGTERM when the runtime's process dies, however it dies.
    Elsewhere (no such prctl) the runtime's orderly stop still ends it."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_for_port(host: str, port: int, timeout_s: float, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on host:port; TimeoutError after `timeout_s`, or at once when
    `process`, the one meant to listen there, has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TimeoutError(f"nothing listens on {host}:{port}: its process exited with {process.returncode}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout_s:g} s")
