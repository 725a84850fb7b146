"""Real local peers for integration tests: vcsim processes and moto (never skipped).

A missing simulator is a failure with the command that fixes it (`make vcsim`), not a skip.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from dcwatch.adapters.secrets import Credentials
from dcwatch.config import Config, VCenter, load_config
from dcwatch.local.cloud import free_port
from dcwatch.local.vcsim import VcsimProcess, create_vms
from tests.configs import write_pair_config


@dataclass
class Site:
    vcenter: VCenter
    credentials: Credentials
    process: VcsimProcess


@pytest.fixture
def vcsim_site() -> Iterator[Callable[..., Site]]:
    """Start a vCenter simulator on a free loopback port with the given VMs (name, powered_on)."""
    started: list[VcsimProcess] = []

    def start(vms: list[tuple[str, bool]] = (), name: str = "site", delay_ms: int = 0) -> Site:
        vcenter = VCenter(url=f"http://127.0.0.1:{free_port()}/sdk", credentials_secret=f"test/{name}")
        credentials = Credentials("tester", secrets.token_urlsafe(8))
        process = VcsimProcess(name, vcenter, credentials, delay_ms=delay_ms).start()
        started.append(process)
        create_vms(vcenter, credentials, vms)
        return Site(vcenter, credentials, process)

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def pair_config(tmp_path: Path) -> tuple[Path, Config]:
    path = write_pair_config(tmp_path)
    return path, load_config(path)


STUCK_NAME = "shop.stuck.test"
STUCK_FOR_S = 20.0


@pytest.fixture
def stuck_lookups(monkeypatch) -> Iterator[None]:
    """The system resolver never answers for STUCK_NAME: its getaddrinfo blocks (for STUCK_FOR_S at most)."""
    answered = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == STUCK_NAME:
            answered.wait(STUCK_FOR_S)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield
    answered.set()
