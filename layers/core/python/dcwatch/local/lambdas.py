"""Lambda functions run in-process: the real handlers, invoked as AWS would invoke them.

Step Functions (moto) invokes Task resources through boto3's Lambda `Invoke`; a handler
registered on botocore's documented `before-call` event answers that call by running the handler
in this process, returning its payload or its error as Lambda does (FunctionError: Unhandled).

A function can run in a process of its own instead (`isolate`), as every Lambda function has its own
runtime: each vantage point's probe does, so a thousand checks per round meet the runtime's other work on
no shared interpreter lock, only on the machine's cores.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from types import ModuleType
from typing import Any
from urllib.parse import unquote

import boto3
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody

from dcwatch import runtime
from dcwatch.local.children import Child
from dcwatch.wiring import FUNCTIONS, FUNCTIONS_DIR, FunctionSpec

ACCOUNT = "123456789012"
Handler = Callable[[Any, Any], Any]
_running: ContextVar[str] = ContextVar("dcwatch_local_function", default="")
_running_step: ContextVar[str] = ContextVar("dcwatch_local_step", default="")


def running_function() -> str:
    """The name of the local function whose invocation the calling code runs in ('' outside any)."""
    return _running.get()


def running_step() -> str:
    """The workflow step that invocation runs (its event's `step`; '' for a function that is not a step's)."""
    return _running_step.get()


def invocation_label(name: str, step: str) -> str:
    """How `invocations` names a call: the function, and the step it ran (`<prefix>-SiteSteps/Fence`)."""
    return f"{name}/{step}" if step else name


@dataclass(frozen=True)
class LambdaContext:
    """The context object the Lambda runtime passes; Powertools reads these fields."""

    function_name: str
    invoked_function_arn: str
    aws_request_id: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    deadline: float = field(default_factory=lambda: time.monotonic() + 60)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


def load_module(code: str) -> ModuleType:
    path = FUNCTIONS_DIR / code / "app.py"
    spec = importlib.util.spec_from_file_location(f"dcwatch_functions_{code}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_handler(spec: FunctionSpec, modules: dict[str, ModuleType] | None = None) -> Handler:
    modules = {} if modules is None else modules
    if spec.code not in modules:
        modules[spec.code] = load_module(spec.code)
    handler: Handler = getattr(modules[spec.code], spec.handler.split(".", 1)[1])
    return handler


class LocalLambdas:
    """All dcwatch functions under their local names, invocable directly or through boto3."""

    def __init__(self, prefix: str, region: str):
        self.prefix, self.region = prefix, region
        modules: dict[str, ModuleType] = {}
        self.specs = {self.name(s): s for s in FUNCTIONS}
        self.handlers: dict[str, Handler] = {self.name(s): load_handler(s, modules) for s in FUNCTIONS}
        self.invocations: list[tuple[str, bool]] = []
        self.environments: dict[str, dict[str, str]] = {}
        self._apps: dict[str, runtime.App] = {}
        self._processes: dict[str, FunctionProcess] = {}
        self._lock = threading.Lock()
        self._registered = False
        # Function key or workflow step -> invocations still to die after doing their work.
        self.crashes: dict[str, int] = {}

    def name(self, spec: FunctionSpec) -> str:
        return f"{self.prefix}-{spec.key}"

    def set_environment(self, spec: FunctionSpec, environment: Mapping[str, str]) -> None:
        """The function's own environment over the deployment's (as CDK sets each function's), e.g. the
        config as its placement sees the sites."""
        self.environments[self.name(spec)] = dict(environment)
        self._apps.pop(self.name(spec), None)

    def add_copy(self, spec: FunctionSpec, suffix: str, environment: Mapping[str, str]) -> str:
        """One more function with `spec`'s code and its own environment (as CDK deploys a probe per vantage point)."""
        name = f"{self.name(spec)}-{suffix}"
        self.specs[name] = spec
        self.handlers[name] = self.handlers[self.name(spec)]
        self.environments[name] = dict(environment)
        self._apps.pop(name, None)
        return name

    def cold_start(self) -> None:
        """Forget every warm environment, e.g. after the deployment's resources were created again."""
        with self._lock:
            self._apps.clear()
        for process in self._processes.values():
            process.cold_start()

    def _app(self, name: str) -> runtime.App:
        with self._lock:
            if name not in self._apps:
                env = {**os.environ, **self.environments[name]}
                self._apps[name] = runtime.App(runtime.Settings.from_env(env))
            return self._apps[name]

    def arn(self, spec: FunctionSpec) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{self.name(spec)}"

    def arns(self) -> dict[str, str]:
        """Function key -> local ARN (`dcwatch.wiring.render_failover_definition` takes them so)."""
        return {spec.key: self.arn(spec) for spec in FUNCTIONS}

    def invoke(self, function: str, event: Any) -> tuple[Any, str | None]:
        """(payload, None) on success, (error payload, error type) when the handler raised."""
        name = function.rsplit(":", 1)[-1] if function.startswith("arn:") else function
        handler = self.handlers.get(name)
        if handler is None:
            return {"errorType": "ResourceNotFoundException", "errorMessage": f"no function {name}"}, "Unhandled"
        spec = self.specs[name]
        step = str(event.get("step") or "") if isinstance(event, dict) else ""
        label = invocation_label(name, step)
        process = self._processes.get(name)
        if process is not None:
            result, failure = process.invoke(event)
        else:
            token, step_token = _running.set(name), _running_step.set(step)
            try:
                app = self._app(name) if name in self.environments else None
                result, failure = run_handler(handler, app, lambda_context(name, self.region, spec), event)
            finally:
                _running.reset(token)
                _running_step.reset(step_token)
        if failure is not None:
            with self._lock:
                self.invocations.append((label, False))
            return failure, "Unhandled"
        crash_key = step or spec.key
        with self._lock:
            crash = self.crashes.get(crash_key, 0) > 0
            if crash:
                self.crashes[crash_key] -= 1
            self.invocations.append((label, not crash))
        if crash:
            # As Lambda reports a runtime killed after the work was done (out of memory, timeout): Lambda.Unknown.
            return {
                "errorType": "Lambda.Unknown",
                "errorMessage": f"injected: {label} died before answering",
            }, "Unhandled"
        return result, None

    def isolate(self, name: str, stdout: int | None = None) -> None:
        """From now on `name` runs in a process of its own, with its environment as it is now (its logs and
        metrics to `stdout`, a file descriptor; none when None)."""
        self._end_process(name)
        env = {**os.environ, **self.environments[name], "PYTHONUNBUFFERED": "1"}  # its log lines as they come
        self._processes[name] = FunctionProcess(name, self.specs[name], self.region, env, stdout).start()

    def process_id(self, name: str) -> int:
        """The process `name` runs in: this one unless it was isolated."""
        process = self._processes.get(name)
        return os.getpid() if process is None else process.pid

    def _end_process(self, name: str) -> None:
        process = self._processes.pop(name, None)
        if process is not None:
            process.stop()

    def close(self) -> None:
        """End the functions' own processes."""
        for name in list(self._processes):
            self._end_process(name)

    def _on_invoke(self, params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        function = unquote(params["url_path"].split("/")[3])
        if not function.rsplit(":", 1)[-1].startswith(self.prefix + "-"):
            return None
        raw = params.get("body") or b"{}"
        event = json.loads(raw.read() if hasattr(raw, "read") else raw)
        payload, error = self.invoke(function, event)
        body = json.dumps(payload, default=str).encode()
        parsed: dict[str, Any] = {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}
        if error:
            parsed["FunctionError"] = error
        return AWSResponse(params.get("url", ""), 200, {}, None), parsed

    def register(self) -> None:
        """Answer Lambda Invoke calls made through boto3's default session (as moto's Step Functions does)."""
        if not self._registered:
            if boto3.DEFAULT_SESSION is None:
                boto3.setup_default_session()
            boto3.DEFAULT_SESSION.events.register("before-call.lambda.Invoke", self._on_invoke)  # type: ignore[union-attr]
            self._registered = True
            reuse_invoke_clients()
            _lambda_eval_utils().boto_client_for(self.region, "lambda")  # made now, not in the first execution

    def unregister(self) -> None:
        if self._registered and boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-call.lambda.Invoke", self._on_invoke)
            self._registered = False
            reuse_invoke_clients()


def _lambda_eval_utils() -> Any:
    """moto's Step Functions interpreter, imported where the runtime drives it (a function's own process never)."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    return lambda_eval_utils


_invoke_clients: dict[tuple[str, str, str], Any] = {}
_invoke_clients_lock = threading.Lock()


def reuse_invoke_clients() -> None:
    """moto's Step Functions builds a new boto3 client for every Task's Lambda Invoke (moto 5: `boto_client_for`),
    some 30 ms each and far more on a busy machine, 20 and more per failover; AWS's Step Functions pays nothing
    like it. From here on, one client per region and endpoint is made and reused, made anew after a function
    set was (un)registered: a client copies the session's event handlers when it is made."""
    from moto.settings import moto_server_port

    lambda_eval_utils = _lambda_eval_utils()
    original = getattr(lambda_eval_utils.boto_client_for, "dcwatch_original", lambda_eval_utils.boto_client_for)

    def reused(region: str, service: str, state_credentials: Any = None) -> Any:
        key = (region, service, moto_server_port())
        with _invoke_clients_lock:
            if key not in _invoke_clients:
                _invoke_clients[key] = original(region, service, state_credentials)
            return _invoke_clients[key]

    reused.dcwatch_original = original  # type: ignore[attr-defined]
    with _invoke_clients_lock:
        _invoke_clients.clear()
        lambda_eval_utils.boto_client_for = reused


def lambda_context(name: str, region: str, spec: FunctionSpec) -> LambdaContext:
    """What Lambda passes one invocation of the function `name` (with `spec`'s memory and timeout)."""
    return LambdaContext(
        name,
        f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}",
        str(uuid.uuid4()),
        memory_limit_in_mb=spec.memory_mb,
        deadline=time.monotonic() + spec.timeout_s,
    )


def run_handler(handler: Handler, app: runtime.App | None, context: LambdaContext, event: Any) -> tuple[Any, Any]:
    """(result, None), or (None, the error payload Lambda reports) when the handler raised."""
    try:
        if app is None:
            return handler(event, context), None
        with runtime.scoped(app):
            return handler(event, context), None
    except Exception as exc:  # noqa: BLE001 - reported to the caller as Lambda reports it
        trace = traceback.format_exception(type(exc), exc, exc.__traceback__)
        return None, {"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": trace[-3:]}


START_TIMEOUT_S = 60.0  # a fresh interpreter imports the handler first, on a busy machine


class FunctionProcess:
    """One function's runtime in a process of its own: its handler, its warm `App`, one invocation at a time
    (as one Lambda execution environment takes one event at a time)."""

    def __init__(self, name: str, spec: FunctionSpec, region: str, env: Mapping[str, str], stdout: int | None):
        self.name, self.spec, self.region, self.env, self.stdout = name, spec, region, env, stdout
        self._child: Child | None = None

    def start(self) -> FunctionProcess:
        code = f"from dcwatch.local.lambdas import _serve_function; _serve_function({{fd}}, {self.spec.key!r})"
        stdout = subprocess.DEVNULL if self.stdout is None else self.stdout
        self._child = Child(self.name, code, self.env, stdout)
        self._running().call("ping", timeout_s=START_TIMEOUT_S)
        return self

    def _running(self) -> Child:
        if self._child is None:
            raise RuntimeError(f"{self.name}: its process is not running")
        return self._child

    @property
    def pid(self) -> int:
        return int(self._running().process.pid)

    def invoke(self, event: Any) -> tuple[Any, Any]:
        try:
            answer = self._running().call("invoke", event, (self.name, self.region), timeout_s=self.spec.timeout_s + 5)
        except (OSError, EOFError, TimeoutError, RuntimeError) as exc:
            return None, {"errorType": "Lambda.Unknown", "errorMessage": f"{self.name}: {exc}"}
        result, failure = answer
        return result, failure

    def cold_start(self) -> None:
        self._running().call("cold", timeout_s=START_TIMEOUT_S)

    def stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop()


def _serve_function(fd: int, key: str) -> None:
    """A function's process: invocations from the runtime over `fd`, one at a time, until it says stop."""
    conn = Connection(fd)
    spec = next(s for s in FUNCTIONS if s.key == key)
    handler = load_handler(spec)
    app: runtime.App | None = None
    while True:
        try:
            command, args = conn.recv()
        except (EOFError, OSError):
            return  # the runtime is gone
        if command == "invoke":
            event, (name, region) = args
            app = app or runtime.App(runtime.Settings.from_env())
            answer: Any = run_handler(handler, app, lambda_context(name, region, spec), event)
        elif command == "cold":
            app, answer = None, None
            runtime.reset()
        else:
            answer = "pong" if command == "ping" else None
        conn.send(answer)
        if command == "stop":
            return
