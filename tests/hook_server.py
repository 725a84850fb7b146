"""A loopback HTTP server (aiohttp) for recovery hooks and a storage mirror's status, in its own thread."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web

from dcwatch.local.cloud import free_port


class HookServer:
    """Loopback HTTP: hooks answer as told (ok, fail, hang); the mirror status says its lag."""

    def __init__(self) -> None:
        self.port = free_port()
        self.behaviour: dict[str, str] = {}
        self.calls: list[str] = []
        self.headers: dict[str, dict[str, str]] = {}  # the last request's headers per hook name
        self.payloads: dict[str, list[dict]] = {}  # every payload per hook name, in order
        self.answers: dict[str, dict] = {}  # a JSON answer per hook name (a snapshot hook's datastore)
        self.mirror = {"state": "in-sync", "lag_seconds": 2}
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _hook(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.calls.append(name)
        self.headers[name] = dict(request.headers)
        self.payloads.setdefault(name, []).append(await request.json() if request.can_read_body else {})
        what = self.behaviour.get(name, "ok")
        if what == "hang":
            await asyncio.sleep(30)
        if what == "ok" and name in self.answers:
            return web.json_response(self.answers[name])
        return web.Response(status=500 if what == "fail" else 200, text=what)

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response({"mirror": self.mirror})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/hook/{name}", self._hook)
        app.router.add_get("/mirror", self._status)
        self._runner = web.AppRunner(app, shutdown_timeout=1)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def start(self) -> HookServer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    async def _shutdown(self) -> None:
        await self._runner.cleanup()
        pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in pending:  # hooks still hanging
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
