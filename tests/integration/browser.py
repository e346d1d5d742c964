"""A real headless Chromium for tests, driven over the DevTools protocol (aiohttp websockets).

``Browser.find()`` is None where no Chromium is installed (tests skip with the reason); CI installs
Debian's ``chromium`` (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

import aiohttp

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--mute-audio",  # decode and play the sound, but not out of this machine's speakers
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--remote-debugging-port=0",
    "--remote-allow-origins=*",
)


class Browser:
    def __init__(self, process: asyncio.subprocess.Process, port: int, http: aiohttp.ClientSession) -> None:
        self.process, self.port, self.http = process, port, http
        self._pages: list[Page] = []

    @staticmethod
    def find() -> str | None:
        override = os.environ.get("TEXTCALL_CHROMIUM")
        if override:
            return override if Path(override).exists() else None
        return next((path for name in NAMES if (path := shutil.which(name))), None)

    @classmethod
    async def launch(cls, profile: Path, *extra: str) -> Browser:
        binary = cls.find()
        if binary is None:
            raise RuntimeError("no Chromium installed")
        process = await asyncio.create_subprocess_exec(
            binary, *FLAGS, f"--user-data-dir={profile}", *extra, "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        port = None
        seen = []
        try:
            async with asyncio.timeout(60):
                while port is None:
                    line = (await process.stderr.readline()).decode(errors="replace")
                    if not line:
                        raise RuntimeError("Chromium exited before its DevTools port was up:\n" + "".join(seen[-20:]))
                    seen.append(line)
                    if m := re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line):
                        port = int(m.group(1))
        except BaseException:
            process.kill()
            await process.wait()
            raise
        asyncio.get_running_loop().create_task(_drain(process.stderr))
        return cls(process, port, aiohttp.ClientSession())

    async def open(self, url: str) -> Page:
        """A new tab at ``url``."""
        async with self.http.put(f"http://127.0.0.1:{self.port}/json/new?{url}") as r:
            target = await r.json()
        ws = await self.http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0)
        page = Page(ws)
        self._pages.append(page)
        return page

    async def close(self) -> None:
        for page in self._pages:
            await page.ws.close()
        await self.http.close()
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


class Page:
    """One tab: ``evaluate(js)`` returns the expression's value (JSON-able), ``click(selector)`` clicks
    like a user (a real mouse event, which counts as a user gesture for autoplay with sound)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._id = 0

    async def call(self, method: str, **params) -> dict:
        self._id += 1
        await self.ws.send_json({"id": self._id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive(), 30)
            if message.type != aiohttp.WSMsgType.TEXT:
                raise RuntimeError(f"DevTools connection ended: {message.type}")
            data = json.loads(message.data)
            if data.get("id") == self._id:
                if "error" in data:
                    raise RuntimeError(f"{method}: {data['error']}")
                return data.get("result", {})

    async def evaluate(self, expression: str):
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def click(self, selector: str) -> None:
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)}).getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        for kind in ("mousePressed", "mouseReleased"):
            await self.call("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass
