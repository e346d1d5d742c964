"""The viewer's test fixtures: an app with the viewer on a stub generator, an SSE reader."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from model.clip import Request
from model.stub import StubGenerator
from receiver.app import CONFIG, SINKS, make_app
from receiver.config import ReceiverConfig
from receiver.recorder import SessionRecorder
from receiver.session import Rendered
from receiver.viewer import setup_viewer
from receiver.viewer_hub import ViewerConfig

TOKEN = "viewer-token-123456"
ANNA_TOKEN = "anna-only-token-1234"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def stub():
    return StubGenerator()


@pytest.fixture
async def make_client(tmp_path, stub):
    clients: list[TestClient] = []

    async def make(settings: ViewerConfig | None = None, **overrides) -> TestClient:
        """A receiver app with the viewer on (``settings``: the same routes with other limits)."""
        config = ReceiverConfig(
            tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, viewer=settings is None, **overrides
        )
        app = make_app(config, generator=stub)
        if settings is not None:
            setup_viewer(app, settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def render(client: TestClient, stub, session_id: str, seq: int, *, sender: str = "anna", text: str = "hi") -> Rendered:
    """What a Session does after generating: record, then call the sinks."""
    app = client.server.app
    request = Request(caption="A woman is talking", text=text, seed=seq)
    clip = stub.generate(request)
    recorder = SessionRecorder(app[CONFIG].out_dir / session_id)
    files = recorder.write(seq, clip)
    recorder.close()
    rendered = Rendered(session_id, sender, seq, clip, request, files, render_ms=42)
    for sink in app[SINKS]:
        sink(rendered)
    return rendered


class EventReader:
    """Reads Server-Sent Events off a streaming response."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, kind: str | None = None, timeout: float = 5.0) -> tuple[str, dict]:
        async def read() -> tuple[str, dict]:
            while True:
                event, data = "message", []
                while True:
                    line = (await self.response.content.readline()).decode()
                    if not line:
                        raise EOFError("stream ended")
                    line = line.rstrip("\n")
                    if not line:
                        break
                    if line.startswith("event: "):
                        event = line[7:]
                    elif line.startswith("data: "):
                        data.append(line[6:])
                if data and (kind is None or event == kind):
                    return event, json.loads("\n".join(data))

        return await asyncio.wait_for(read(), timeout)
