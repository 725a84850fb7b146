"""Recovery hooks: an HTTP call or a synchronous Lambda invocation, each bounded by its own timeout.

A hook's own failure (refused, wrong status, function error, timeout) is a result, not an exception:
the workflow decides from the hook's `on_failure` whether to stop or go on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from dcwatch.adapters.secrets import HeadersFor, no_headers_secrets
from dcwatch.config import Hook
from dcwatch.errors import SecretUnusable
from dcwatch.ports import HookResult


def _lambda_client(timeout_s: float) -> Any:
    """No SDK retries: a retried hook call could run the hook twice."""
    config = BotoConfig(read_timeout=timeout_s, connect_timeout=min(timeout_s, 5), retries={"max_attempts": 1})
    return boto3.client("lambda", config=config)


class HookCaller:
    def __init__(
        self,
        lambda_client: Callable[[float], Any] = _lambda_client,
        headers: HeadersFor = no_headers_secrets,
    ):
        self._lambda_client = lambda_client
        self._headers = headers

    def run(self, hook: Hook, payload: Mapping[str, Any]) -> HookResult:
        if hook.url is not None:
            headers: dict[str, str] = {}
            if hook.headers_secret is not None:
                try:
                    headers = self._headers(hook.headers_secret)
                except SecretUnusable as exc:  # the hook failed without being called: its on_failure decides
                    return HookResult(False, f"{hook.method} {hook.url}: not called: {exc}"[:300])
            return asyncio.run(_http(hook, payload, headers))
        return self._invoke(hook, payload)

    def _invoke(self, hook: Hook, payload: Mapping[str, Any]) -> HookResult:
        try:
            response = self._lambda_client(hook.timeout_s).invoke(
                FunctionName=hook.function, InvocationType="RequestResponse", Payload=json.dumps(payload).encode()
            )
        except (ClientError, BotoCoreError) as exc:
            return HookResult(False, f"Lambda {hook.function} not invoked: {exc}"[:300])
        body = response["Payload"].read().decode(errors="replace")
        if response.get("FunctionError"):
            try:
                error = json.loads(body)
                body = f"{error.get('errorType', 'error')}: {error.get('errorMessage', '')}"
            except ValueError:
                pass
            return HookResult(False, f"Lambda {hook.function} failed: {body}"[:300])
        return HookResult(True, f"Lambda {hook.function} done", _answer(body))


def _answer(body: str) -> dict[str, Any]:
    """What a hook answered, when it is a JSON object (a snapshot hook names its datastore); else nothing."""
    try:
        answer = json.loads(body)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}


async def _http(hook: Hook, payload: Mapping[str, Any], headers: Mapping[str, str]) -> HookResult:
    assert hook.url is not None
    import aiohttp  # with the first HTTP hook: most groups have none, and aiohttp is a tenth of a cold start

    from dcwatch.adapters.lookups import Lookups, bounded

    lookups = Lookups()  # a lookup the system resolver never answers must not outlast the hook's timeout
    connector = aiohttp.TCPConnector(resolver=lookups.resolver())
    try:
        with bounded(hook.timeout_s):
            async with asyncio.timeout(hook.timeout_s), aiohttp.ClientSession(connector=connector) as session:
                body = dict(payload) if hook.method != "GET" else None
                async with session.request(
                    hook.method, hook.url, json=body, headers=headers, allow_redirects=False
                ) as response:
                    if response.status in hook.expect_status:
                        text = await response.text(errors="replace")
                        return HookResult(True, f"{hook.method} {hook.url}: status {response.status}", _answer(text))
                    return HookResult(
                        False,
                        f"{hook.method} {hook.url}: status {response.status}, expected "
                        f"{' or '.join(map(str, hook.expect_status))}",
                    )
    except TimeoutError:
        return HookResult(False, f"{hook.method} {hook.url}: timeout after {hook.timeout_s:g} s")
    except aiohttp.ClientError as exc:
        return HookResult(False, f"{hook.method} {hook.url}: {type(exc).__name__}: {exc}"[:300])
    finally:
        lookups.close()
