"""A headless Chromium driven over the Chrome DevTools Protocol (CDP), with aiohttp only.

    async with Chromium.start(tmp_path) as browser:
        page = await browser.page()
        await page.goto(url)
        title = await page.evaluate("document.title")
        png = await page.screenshot()

Every wait is bounded; leaving the block kills the browser and its children.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

START_TIMEOUT = 20.0
COMMAND_TIMEOUT = 10.0


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class CdpError(RuntimeError):
    pass


class Page:
    """One tab: commands in, results out; events are kept in `events` for assertions."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = 0
        self.events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._ids += 1
        ident = self._ids
        await self._ws.send_json({"id": ident, "method": method, "params": params})
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:
                message = await self._ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise CdpError(f"{method}: DevTools connection ended ({message.type})")
                body: dict[str, Any] = json.loads(message.data)
                if body.get("id") == ident:
                    if "error" in body:
                        raise CdpError(f"{method}: {body['error']}")
                    result: dict[str, Any] = body.get("result", {})
                    return result
                if "method" in body:
                    self.events.append(body)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression (awaited when it is a promise)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise CdpError(f"{expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str, limit: float = 10.0) -> None:
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete'", limit)

    async def wait_for(self, expression: str, limit: float, interval: float = 0.02) -> float:
        """Seconds until `expression` is truthy in the page; CdpError after `limit` seconds."""
        start = time.monotonic()
        while True:
            if await self.evaluate(expression):
                return time.monotonic() - start
            if time.monotonic() - start > limit:
                raise CdpError(f"not true within {limit}s: {expression}")
            await asyncio.sleep(interval)

    async def screenshot(self) -> bytes:
        result = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(result["data"])

    def problems(self) -> list[str]:
        """Console errors and browser log errors seen so far (CSP violations among them)."""
        found = []
        for event in self.events:
            params = event.get("params", {})
            if event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
                found.append(params["entry"]["text"])
            if event["method"] == "Runtime.exceptionThrown":
                found.append(str(params["exceptionDetails"].get("text")))
            if event["method"] == "Runtime.consoleAPICalled" and params["type"] == "error":
                found.append(" ".join(str(a.get("value")) for a in params["args"]))
        return found

    def requested_urls(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e["method"] == "Network.requestWillBeSent"
        ]


class Chromium:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self._session = aiohttp.ClientSession()
        self._sockets: list[aiohttp.ClientWebSocketResponse] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def start(
        cls, workdir: Path, *, width: int = 1280, height: int = 800
    ) -> AsyncIterator[Chromium]:
        binary = chromium_binary()
        if binary is None:
            raise CdpError("no chromium on PATH (apt-get install chromium)")
        profile = workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        log = (workdir / "chromium.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-quic",
            "--disable-component-update",
            "--disable-sync",
            "--disable-breakpad",
            "--disable-crash-reporter",
            "--disable-extensions",
            "--disable-default-apps",
            "--no-first-run",
            "--no-default-browser-check",
            "--mute-audio",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,  # its own process group: killed as a whole
        )
        browser: Chromium | None = None
        try:
            port = await cls._devtools_port(profile, process)
            browser = cls(process, port)
            yield browser
        finally:
            log.close()
            if browser is not None:
                await browser._close_sockets()
            await _kill(process)

    @staticmethod
    async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
        """Chromium writes the port it chose to `DevToolsActivePort` in its profile."""
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise CdpError(f"chromium exited with {process.returncode}")
            with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            await asyncio.sleep(0.05)
        raise CdpError(f"chromium did not open its DevTools port within {START_TIMEOUT}s")

    async def page(self) -> Page:
        """The first tab, with console, log and network events recorded."""
        base = f"http://127.0.0.1:{self.port}"
        async with asyncio.timeout(START_TIMEOUT):
            while True:
                async with self._session.get(f"{base}/json/list") as response:
                    targets = await response.json()
                pages = [t for t in targets if t.get("type") == "page"]
                if pages:
                    break
                await asyncio.sleep(0.05)
            ws = await self._session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)
        self._sockets.append(ws)
        page = Page(ws)
        for domain in ("Page", "Runtime", "Log", "Network"):
            await page.send(f"{domain}.enable")
        return page

    async def _close_sockets(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        await self._session.close()


async def _kill(process: asyncio.subprocess.Process) -> None:
    """SIGTERM to the browser's process group (it reaps its children), SIGKILL if it lingers."""
    for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 10.0)):
        if process.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # any child left behind in the group
