"""How `dcwatch fault` reaches a running `dcwatch up`: a small HTTP server on 127.0.0.1, its address and a random
token in `<run dir>/control.json` (mode 0600), so only whoever can read the run directory can break the sites.

A fault is one scenario step (`dcwatch.local.scenario.spec.Step`, without `at`), checked against the config and
applied by the scenario player, as a scenario file's step would be: one code path for faults by hand and by file.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dcwatch.local.scenario.player import Player
from dcwatch.local.scenario.spec import Expect, ScenarioError, ScenarioSpec, Step, check_against

if TYPE_CHECKING:
    from dcwatch.local.pipeline import LocalPipeline

CONTROL_FILE = "control.json"
APPLY_TIMEOUT_S = 60.0  # a site killed stops its vCenter, services and agent: seconds, not minutes


class FaultRefused(Exception):
    """The fault names something the running config does not have, or is not a fault at all (exit 2)."""


class FaultFailed(Exception):
    """The fault was valid but applying it failed (exit 1)."""


class UpNotRunning(Exception):
    """No `dcwatch up` answers for this run directory (exit 2)."""


def parse_fault(config: Any, step: dict[str, Any]) -> ScenarioSpec:
    """One step, as a one-step scenario checked against the config: its problems named as a scenario's are."""
    try:
        parsed = Step.model_validate({**step, "at": 0})
    except ValidationError as exc:
        raise FaultRefused("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    spec = ScenarioSpec(
        name="by-hand", description="a fault by hand", proves="-", steps=[parsed], expect=Expect(failover=False)
    )
    try:
        check_against(spec, config)
    except ScenarioError as exc:
        raise FaultRefused(
            "; ".join(f"{path.removeprefix('steps[0].')}: {msg}" for path, msg in exc.problems)
        ) from None
    return spec


class FaultChannel:
    """The `up` side: applies each fault it is sent to the pipeline, one at a time, and tells `log` about it."""

    def __init__(self, pipeline: LocalPipeline, run_dir: Path, log: Callable[[str, str], None]):
        self.pipeline, self.run_dir, self.log = pipeline, run_dir, log
        self.token = secrets.token_urlsafe(24)
        # Every fault is applied on this one long-lived thread, not on the request's: a fault that starts a process
        # (a vCenter or an agent coming back) gives it `die_with_parent`, whose signal Linux sends when the thread
        # that started it ends, and a request's thread ends with its answer.
        self._applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fault-apply")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-channel", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FaultChannel:
        self._thread.start()
        path = self.run_dir / CONTROL_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"url": self.url, "token": self.token, "pid": os.getpid()}, out)
        return self

    def stop(self) -> None:
        (self.run_dir / CONTROL_FILE).unlink(missing_ok=True)
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self._applier.shutdown(wait=True, cancel_futures=True)

    def apply(self, step: dict[str, Any]) -> list[str]:
        """Apply one fault now, one at a time; what was done, one line per action."""
        spec = parse_fault(self.pipeline.config, step)
        return self._applier.submit(self._apply, spec).result(timeout=APPLY_TIMEOUT_S)

    def _apply(self, spec: ScenarioSpec) -> list[str]:
        player = Player(self.pipeline, spec, self.log)
        done = []
        for _, action, text, _ in player.schedule():
            self.log("fault_injected", f"{text} (by hand)")
            try:
                action()
            except Exception as exc:  # noqa: BLE001 - told to whoever sent it; `up` runs on
                self.log("step_failed", f"{text}: {exc}")
                raise FaultFailed(f"{text}: {exc}") from exc
            done.append(text)
        return done

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        channel = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/" or not self._authorized():
                    return self._answer(403, {"error": "unknown path, or the wrong token"})
                self._answer(200, {"pid": os.getpid()})

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/fault" or not self._authorized():
                    return self._answer(403, {"error": "unknown path, or the wrong token"})
                try:
                    length = min(int(self.headers.get("Content-Length") or 0), 65536)
                    step = json.loads(self.rfile.read(length) or b"{}")
                    if not isinstance(step, dict):
                        raise FaultRefused("a fault is a JSON object: one scenario step")
                    self._answer(200, {"applied": channel.apply(step)})
                except (FaultRefused, json.JSONDecodeError, ValueError) as exc:
                    self._answer(400, {"error": str(exc)})
                except FaultFailed as exc:
                    self._answer(500, {"error": str(exc)})

            def _authorized(self) -> bool:
                given = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return hmac.compare_digest(given.encode(), channel.token.encode())

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the faults are logged instead
                pass

        return Handler


def _call(run_dir: Path, path: str, body: dict[str, Any] | None, timeout_s: float) -> Any:
    """One request to the `up` running in `run_dir` (POST with a body, GET without); its JSON answer."""
    control_path = run_dir / CONTROL_FILE
    not_running = f"no `dcwatch up` is running for {run_dir}"
    try:
        control = json.loads(control_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UpNotRunning(f"{not_running} (no {control_path}): start `dcwatch up` first") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise UpNotRunning(f"{not_running}: {control_path} cannot be read ({exc}); start `dcwatch up` again") from None
    request = urllib.request.Request(
        f"{control['url']}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {control['token']}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - loopback, from our file
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        error = str(json.loads(exc.read() or b"{}").get("error") or exc)
        if exc.code == 500:
            raise FaultFailed(error) from None
        raise FaultRefused(error) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UpNotRunning(
            f"{not_running}: its control channel {control['url']} does not answer ({reason}); start `dcwatch up`"
        ) from None


def send_fault(run_dir: Path, step: dict[str, Any], timeout_s: float = APPLY_TIMEOUT_S) -> list[str]:
    """The `fault` side: the step sent to the `up` running in `run_dir`; what it applied."""
    return list(_call(run_dir, "/fault", step, timeout_s)["applied"])


def running_pid(run_dir: Path, timeout_s: float = 5) -> int | None:
    """The pid of the `up` that answers for `run_dir`, or None when none does."""
    try:
        return int(_call(run_dir, "/", None, timeout_s)["pid"])
    except UpNotRunning:
        return None
