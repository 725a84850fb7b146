"""Processes the local runtime starts (moto, vcsim) end with it, also when it is killed outright."""

from __future__ import annotations

import contextlib
import ctypes
import signal

PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """`preexec_fn` of a child: Linux sends it SIGTERM when the runtime's process dies, however it dies.
    Elsewhere (no such prctl) the runtime's orderly stop still ends it."""
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
