"""Processes the local runtime starts (moto, vcsim): they end with it, also when it is killed outright,
and the runtime waits for each to listen before it goes on."""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from typing import IO, Any

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` of a child: Linux sends it SIGTERM when the runtime's process dies, however it dies.
    Elsewhere (no such prctl) the runtime's orderly stop still ends it. The child ignores SIGINT (Python and Go
    keep an inherited SIG_IGN): Ctrl-C reaches the terminal's whole process group, and the runtime, not each
    child on its own with a traceback, stops the children in order."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
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


def spawn_python(
    code: str, env: Mapping[str, str] | None = None, stdout: int | IO[bytes] | None = subprocess.DEVNULL
) -> tuple[subprocess.Popen[bytes], Connection]:
    """A child interpreter running `code` with `{fd}` replaced by its end of a socket pair, and our end as a
    multiprocessing Connection (its framing and pickling on both sides). Not multiprocessing's spawn, which
    would import the caller's main module again."""
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        [sys.executable, "-c", code.format(fd=theirs.fileno())],
        pass_fds=[theirs.fileno()],
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        env=None if env is None else dict(env),
        preexec_fn=die_with_parent,
    )
    theirs.close()
    return process, Connection(ours.detach())


def end_child(process: subprocess.Popen[bytes], timeout_s: float = 5) -> None:
    """Wait for a child told to stop; killed if it has not ended within `timeout_s`."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


class Child:
    """A child interpreter the runtime talks to over a socket pair (`spawn_python`): one command at a time,
    each answered; `stop` tells it to stop, waits for it and closes the connection."""

    def __init__(
        self,
        name: str,
        code: str,
        env: Mapping[str, str] | None = None,
        stdout: int | IO[bytes] | None = subprocess.DEVNULL,
    ):
        """`stdout` as `subprocess.Popen` takes it (None: this process's)."""
        self.name = name
        self.process, self._conn = spawn_python(code, env, stdout)
        self._lock = threading.Lock()
        self._open = True

    def call(self, command: str, *args: Any, timeout_s: float) -> Any:
        """Its answer to `(command, args)`; TimeoutError when none comes within `timeout_s`."""
        with self._lock:
            if not self._open:
                raise RuntimeError(f"{self.name} is not running")
            self._conn.send((command, args))
            if not self._conn.poll(timeout_s):
                raise TimeoutError(f"{self.name}: no answer to {command} within {timeout_s:g} s")
            return self._conn.recv()

    def stop(self, timeout_s: float = 5) -> None:
        with contextlib.suppress(OSError, EOFError, TimeoutError, RuntimeError):  # it is going away anyway
            if self.process.poll() is None:
                self.call("stop", timeout_s=timeout_s)
        end_child(self.process, timeout_s)
        with self._lock:
            if self._open:
                self._conn.close()
                self._open = False
