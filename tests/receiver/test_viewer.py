"""The browser viewer: page, token-guarded event stream, clip downloads, slow browsers."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from model.clip import Request
from model.stub import StubGenerator
from receiver.app import SESSIONS, make_app
from receiver.config import ReceiverConfig
from receiver.recorder import read_mp4
from receiver.session import Rendered
from receiver.viewer import VIEWER
from receiver.viewer_hub import ViewerClient, ViewerConfig, ViewerHub

from tests.receiver.conftest import ANNA_TOKEN, AUTH, TOKEN, EventReader, render


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
            from receiver.bitrate import BitrateMeter, Link

            self.meter = BitrateMeter("sess01")
            self.meter.link(Link(2000, 10, 300, 3), Link(1800, 9, 300, 3))
            self.meter.mark_setup()  # the Hello: the call starts
            self.meter.message_received(120, utterance=True)
            self.meter.link(Link(2500, 13, 400, 4), Link(2000, 11, 380, 4))
            self.meter.call_started -= 2.0  # two seconds of call
            self.meter.rendered(2.0)

    async with client.get("/view/events", headers=AUTH) as response:
        events = EventReader(response)
        await events.next("hello")
        app[SESSIONS]["sess01"] = FakeSession()
        _, snapshot = await events.next("sessions")
        [entry] = snapshot["sessions"]
        assert entry["session"] == "sess01" and entry["sender"] == "anna"
        bitrate = entry["bitrate"]  # per second of call, all in after the setup: 500 + 100 + 28 x 4 B in 2 s
        assert bitrate["payload_bps"] == pytest.approx(8 * 120 / 2.0, rel=0.05)
        assert bitrate["udp_bps"] == pytest.approx(8 * (500 + 100 + 28 * 4) / 2.0, rel=0.05)
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
    from receiver.viewer import STATIC
    from receiver.viewer_hub import sse

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
