"""The browser viewer: page, token-guarded event stream, clip downloads, slow browsers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from model.clip import Request
from model.stub import StubGenerator
from receiver.app import CONFIG, SESSIONS, SINKS, make_app
from receiver.config import ReceiverConfig
from receiver.recorder import SessionRecorder, read_mp4
from receiver.session import Rendered
from receiver.viewer import VIEWER, ViewerClient, ViewerConfig, ViewerHub, setup_viewer

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


async def test_page_and_assets_are_served_without_a_token(make_client):
    client = await make_client()
    page = await client.get("/view")
    assert page.status == 200 and page.content_type == "text/html"
    html = await page.text()
    assert "http" not in html.replace("http-equiv", "")  # no CDN
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    # the links as a browser resolves them against the page's address (/view), not as the server names them
    import re
    from urllib.parse import urljoin

    links = dict(re.findall(r'(src|href)="([^"]+\.(?:js|css))"', html))
    assert set(links) == {"src", "href"}
    for link, kind in ((links["src"], "text/javascript"), (links["href"], "text/css")):
        response = await client.get(urljoin("http://receiver/view", link).removeprefix("http://receiver"))
        assert response.status == 200 and response.content_type == kind, link
    assert (await client.get("/view/viewer.py")).status == 404


async def test_viewer_is_off_unless_asked(tmp_path, stub):
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path, port=0)
    async with TestClient(TestServer(make_app(config, generator=stub))) as client:
        assert (await client.get("/view")).status == 404
        assert (await client.get("/view/events", headers=AUTH)).status == 404
    with pytest.raises(ValueError, match="recording"):
        ReceiverConfig(tokens=frozenset({TOKEN}), viewer=True, record=False, play=True)


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0000"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}],
    ids=["none", "wrong", "no scheme", "basic"],
)
async def test_events_and_clips_need_the_token(make_client, stub, headers):
    client = await make_client()
    response = await client.get("/view/events", headers=headers)
    assert response.status == 401 and "Bearer" in response.headers["WWW-Authenticate"]
    render(client, stub, "sess01", 1)
    assert (await client.get("/view/clips/sess01/0001.mp4", headers=headers)).status == 401
    assert (await client.get("/view/clips/sess01/0001.mp4", headers=AUTH)).status == 200


async def test_rendered_clip_becomes_an_event_and_a_playable_mp4(make_client, stub, tmp_path):
    client = await make_client()
    async with client.get("/view/events", headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = EventReader(response)
        kind, hello = await events.next()
        assert kind == "hello" and hello["model"] == "stub" and hello["sessions"] == []
        rendered = render(client, stub, "sess01", 7, text="Good morning, everyone.")
        _, event = await events.next("clip")
    assert event["session"] == "sess01" and event["sender"] == "anna" and event["seq"] == 7
    assert event["caption"] == "A woman is talking" and event["text"] == "Good morning, everyone."
    assert event["duration"] == pytest.approx(rendered.clip.seconds, abs=1e-3)
    assert event["render_ms"] == 42 and event["frames"] == rendered.clip.video.shape[0]
    assert event["url"] == "/view/clips/sess01/0007.mp4" and "replay" not in event
    download = await client.get(event["url"], headers=AUTH)
    assert download.status == 200 and download.content_type == "video/mp4"
    path = tmp_path / "download.mp4"
    path.write_bytes(await download.read())
    video, audio, fps, rate = read_mp4(path)
    assert video.shape == rendered.clip.video.shape and fps == 16 and rate == 16_000
    assert audio.size > 0


async def test_a_page_opened_later_gets_the_recent_clips(make_client, stub):
    client = await make_client(ViewerConfig(backlog=2))
    for seq in (1, 2, 3):
        render(client, stub, "sess01", seq)
    async with client.get("/view/events", headers=AUTH) as response:
        events = EventReader(response)
        replayed = [(await events.next("clip"))[1] for _ in range(2)]
    assert [e["seq"] for e in replayed] == [2, 3] and all(e["replay"] for e in replayed)


@pytest.mark.parametrize(
    "path",
    [
        "/view/clips/..%2F..%2Fetc/passwd.mp4",
        "/view/clips/%2e%2e/0001.mp4",
        "/view/clips/sess01/..%2F..%2Frendered.mp4",
        "/view/clips/sess01/%2e%2e%2f0001.mp4",
        "/view/clips/sess01/session.mp4",
        "/view/clips/sess01/0001.mp4/../../../../etc/passwd",
        "/view/clips/sess01/0002.mp4",  # never rendered
        "/view/clips/sess02/0001.mp4",  # another session
        "/view/clips/sess01/0099.mp4",  # on disk, but not a clip the viewer announced
        "/view/%2e%2e/%2e%2e/receiver/app.py",
        "/view/clips/sess01/0001.MP4",
    ],
)
async def test_clip_paths_cannot_escape(make_client, stub, path):
    client = await make_client()
    rendered = render(client, stub, "sess01", 1)
    (rendered.files[0].parent / "0099.mp4").write_bytes(rendered.files[0].read_bytes())
    response = await client.get(URL(path, encoded=True), headers=AUTH)
    assert response.status in (400, 404)
    assert b"ftyp" not in await response.read()


async def test_a_sender_token_sees_only_that_sender(make_client, stub):
    client = await make_client(sender_tokens=((ANNA_TOKEN, "anna"),))
    anna = {"Authorization": f"Bearer {ANNA_TOKEN}"}
    async with client.get("/view/events", headers=anna) as response:
        events = EventReader(response)
        _, hello = await events.next("hello")
        assert hello["sender"] == "anna"
        render(client, stub, "sess-ben", 1, sender="ben")
        render(client, stub, "sess-anna", 1, sender="anna")
        _, event = await events.next("clip")
    assert event["sender"] == "anna"
    assert (await client.get("/view/clips/sess-ben/0001.mp4", headers=anna)).status == 404
    assert (await client.get("/view/clips/sess-anna/0001.mp4", headers=anna)).status == 200
    assert (await client.get("/view/clips/sess-ben/0001.mp4", headers=AUTH)).status == 200


def test_full_queue_drops_the_oldest_and_counts():
    client = ViewerClient(1, size=3)
    dropped = [client.offer(f"event {n}") for n in range(5)]
    assert dropped == [False, False, False, True, True] and client.dropped == 2
    assert [client.queue.get_nowait() for _ in range(3)] == ["event 2", "event 3", "event 4"]


async def test_a_browser_that_never_reads_does_not_block_the_sink(make_client, stub):
    client = await make_client(ViewerConfig(client_queue=4, backlog=0))
    hub: ViewerHub = client.server.app[VIEWER]
    stalled = await client.get("/view/events", headers=AUTH)
    await EventReader(stalled).next("hello")  # connected; from here on it never reads
    async with client.get("/view/events", headers=AUTH) as reading:
        reader = EventReader(reading)
        await reader.next("hello")
        stuck, healthy = sorted(hub.clients.values(), key=lambda c: c.id)
        seen: list[int] = []

        async def watch() -> None:
            while True:
                seen.append((await reader.next("clip", timeout=10))[1]["seq"])

        watching = asyncio.get_running_loop().create_task(watch())
        rendered = render(client, stub, "sess01", 1)
        request = Request(text="x" * 20_000)  # ~20 kB per event (the clip itself stays short)
        # The stalled browser's socket buffers fill (a few MB), then its queue: the oldest events are
        # dropped and counted, while publishing (the sink) goes on and the reading browser keeps up.
        seq = 1
        while stuck.dropped == 0 and seq < 3_000:
            seq += 1
            hub.publish(Rendered("sess01", "anna", seq, rendered.clip, request, rendered.files))
            await asyncio.sleep(0.001)
        assert stuck.dropped > 0 and hub.dropped >= stuck.dropped
        assert stuck.queue.qsize() <= 4
        for _ in range(500):
            if seen and seen[-1] == seq:
                break
            await asyncio.sleep(0.01)
        watching.cancel()
        assert seen[0] == 1 and seen[-1] == seq and seen == sorted(seen)
        assert healthy.dropped < stuck.dropped
    stalled.close()
    for _ in range(100):  # both streams' handlers notice their browsers left and unregister
        if not hub.clients:
            break
        await asyncio.sleep(0.05)
    assert hub.clients == {}


async def test_sessions_and_bitrate_are_announced(make_client, stub):
    client = await make_client(ViewerConfig(snapshot_seconds=0.05))
    app = client.server.app

    class FakeSession:  # what the snapshot reads from a Session
        sender_id = "anna"

        def __init__(self) -> None:
            from receiver.bitrate import BitrateMeter

            self.meter = BitrateMeter("sess01")
            self.meter.received(120, utterance=True)
            self.meter.rendered(2.0)

    async with client.get("/view/events", headers=AUTH) as response:
        events = EventReader(response)
        await events.next("hello")
        app[SESSIONS]["sess01"] = FakeSession()
        _, snapshot = await events.next("sessions")
        [entry] = snapshot["sessions"]
        assert entry["session"] == "sess01" and entry["sender"] == "anna"
        assert entry["bitrate"]["payload_bps"] == pytest.approx(8 * 120 / 2.0)
        del app[SESSIONS]["sess01"]
        _, snapshot = await events.next("sessions")
        assert snapshot["sessions"] == []


async def test_shutdown_ends_open_streams(tmp_path, stub):
    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path, port=0, viewer=True)
    client = TestClient(TestServer(make_app(config, generator=stub)))
    await client.start_server()
    response = await client.get("/view/events", headers=AUTH)
    await EventReader(response).next("hello")
    await asyncio.wait_for(client.close(), 5)  # would wait out aiohttp's shutdown timeout otherwise


async def test_a_real_sender_session_reaches_the_viewer(tmp_path):
    """End to end: a sender over WebRTC on loopback, the session's sink, the event, the MP4."""
    from receiver.serve import start
    from sender.client import Sender, SenderConfig

    config = ReceiverConfig(tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, loopback=True,
                            viewer=True)
    runner, url = await start(config, generator=StubGenerator())
    sender = Sender(SenderConfig(receiver_url=url, token=TOKEN, sender_id="anna", loopback=True))
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/view/events", headers=AUTH) as response:
                events = EventReader(response)
                await events.next("hello")
                await sender.start()
                sender.say(caption="A man is talking", text="Hello from the loopback.")
                _, event = await events.next("clip", timeout=30)
            assert event["sender"] == "anna" and event["seq"] == 1 and event["render_ms"] > 0
            assert event["bitrate"]["clips"] == 1 and event["bitrate"]["payload_bytes_in"] > 0
            async with http.get(url + event["url"], headers=AUTH) as download:
                assert download.status == 200
                path = Path(tmp_path / "clip.mp4")
                path.write_bytes(await download.read())
        assert read_mp4(path)[0].shape[1:] == (64, 64, 3)
    finally:
        await sender.close()
        await runner.cleanup()


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to run the page's script")
def test_the_page_script_parses_the_stream_the_server_writes():
    from receiver.viewer import STATIC, sse

    stream = sse("hello", {"model": "stub"}) + ": keepalive\n\n" + sse("clip", {"text": "two\nlines", "seq": 1})
    cut = len(stream) - 7  # the second event arrives in two pieces
    script = (
        f"const v = require({json.dumps(str(STATIC / 'viewer.js'))});"
        f"let [a, rest] = v.parseEvents({json.dumps(stream[:cut])});"
        f"let [b, left] = v.parseEvents(rest + {json.dumps(stream[cut:])});"
        "console.log(JSON.stringify({a, b, left}));"
    )
    out = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True, check=True).stdout)
    assert [e["type"] for e in out["a"]] == ["hello"] and json.loads(out["a"][0]["data"]) == {"model": "stub"}
    assert [e["type"] for e in out["b"]] == ["clip"] and out["left"] == ""
    assert json.loads(out["b"][0]["data"]) == {"text": "two\nlines", "seq": 1}


# ------------------------------------------------------------------------------------ live chunks


def live_chunks(client: TestClient, stub, session_id: str, seq: int, *, sender: str = "anna", text: str = "x" * 40,
                upto: int | None = None) -> list:
    """What a Session does while generating: hand each chunk to the live observers (all, or the first ``upto``)."""
    import time as _time

    from receiver.app import LIVE
    from receiver.session import Live

    request = Request(caption="A woman is talking", text=text, seed=seq)
    chunks = list(stub.open_call(sender).stream(request))[:upto]
    for chunk in chunks:
        for observer in client.server.app[LIVE]:
            observer(Live(session_id, sender, seq, request, _time.monotonic(), chunk))
    return chunks


class _LiveSession:  # what the hub reads of a live Session
    def __init__(self, sender: str) -> None:
        from receiver.bitrate import BitrateMeter

        self.sender_id, self.meter = sender, BitrateMeter("x")

    async def close(self, reason: str = "", *, finish: bool = True) -> None:
        pass


async def test_each_chunk_is_announced_and_served_as_a_media_segment(make_client, stub):
    import io

    import av

    client = await make_client()
    client.server.app[SESSIONS]["sess01"] = _LiveSession("anna")
    async with client.get("/view/events", headers=AUTH) as response:
        events = EventReader(response)
        await events.next("hello")
        chunks = live_chunks(client, stub, "sess01", 1)
        announced = [(await events.next("chunk"))[1] for _ in chunks]
    assert [e["index"] for e in announced] == list(range(len(chunks))) and announced[-1]["last"]
    assert [e["segment"] for e in announced] == list(range(len(chunks)))
    assert announced[0]["text"] == "x" * 40 and announced[0]["mime"].startswith('video/mp4; codecs="avc1.')
    assert announced[1]["start"] == pytest.approx(announced[0]["duration"], abs=1e-3)
    init = await client.get(announced[0]["init"], headers=AUTH)
    assert init.status == 200
    data = await init.read()
    for event in announced:
        segment = await client.get(event["url"], headers=AUTH)
        assert segment.status == 200 and segment.content_type == "video/iso.segment"
        data += await segment.read()
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    video = np.concatenate([c.video for c in chunks])
    assert len(frames) == len(video)
    assert np.abs(np.stack(frames).astype(float) - video).mean() < 12  # the frames that were made, H.264-coded
    assert (await client.get(announced[0]["url"])).status == 401
    assert (await client.get("/view/live/sess01/99.m4s", headers=AUTH)).status == 404
    assert (await client.get("/view/live/other/init.mp4", headers=AUTH)).status == 404


async def test_a_page_that_opens_mid_utterance_starts_at_its_first_segment(make_client, stub):
    client = await make_client(sender_tokens=((ANNA_TOKEN, "anna"),))
    client.server.app[SESSIONS]["sess01"] = _LiveSession("anna")
    client.server.app[SESSIONS]["sess02"] = _LiveSession("ben")
    live_chunks(client, stub, "sess01", 1)  # a whole utterance: segments 0..3
    live_chunks(client, stub, "sess01", 2, upto=2)  # half of the next: 4, 5
    live_chunks(client, stub, "sess02", 1, sender="ben", upto=1)
    for _ in range(200):  # encoded on the hub's thread
        await asyncio.sleep(0.01)
        if client.server.app[VIEWER].streams["sess01"].next == 6 and "sess02" in client.server.app[VIEWER].streams:
            break
    async with client.get("/view/events", headers={"Authorization": f"Bearer {ANNA_TOKEN}"}) as response:
        _, hello = await EventReader(response).next("hello")
    [live] = hello["live"]  # anna's token sees only anna's stream
    assert live["session"] == "sess01" and live["from"] == 4 and live["next"] == 6
    assert live["utterance"]["seq"] == 2 and live["utterance"]["text"] == "x" * 40
    anna = {"Authorization": f"Bearer {ANNA_TOKEN}"}
    assert (await client.get("/view/live/sess02/0.m4s", headers=anna)).status == 404
    assert (await client.get("/view/live/sess01/4.m4s", headers=anna)).status == 200


async def test_a_failed_utterance_is_announced_and_the_stream_goes_on(make_client, stub):
    import time as _time

    from receiver.app import LIVE
    from receiver.session import Live

    client = await make_client(ViewerConfig(snapshot_seconds=0.05))
    client.server.app[SESSIONS]["sess01"] = _LiveSession("anna")
    async with client.get("/view/events", headers=AUTH) as response:
        events = EventReader(response)
        await events.next("hello")
        live_chunks(client, stub, "sess01", 1, upto=1)
        for observer in client.server.app[LIVE]:
            observer(Live("sess01", "anna", 1, Request(text="x"), _time.monotonic(), failed="generation failed: boom"))
        await events.next("chunk")
        _, failed = await events.next("failed")
        assert failed["seq"] == 1 and "boom" in failed["reason"]
        live_chunks(client, stub, "sess01", 2, upto=1)
        _, chunk = await events.next("chunk")
    assert chunk["seq"] == 2 and chunk["segment"] == 1 and chunk["start"] > 0  # the same timeline, on
    hub = client.server.app[VIEWER]
    assert "sess01" in hub.streams
    client.server.app[SESSIONS].clear()  # the session ends: its stream is dropped at the next check
    for _ in range(300):
        await asyncio.sleep(0.01)
        if not hub.streams:
            break
    assert not hub.streams
    assert (await client.get("/view/live/sess01/init.mp4", headers=AUTH)).status == 404
