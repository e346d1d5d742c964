"""The live viewer: each chunk announced and served as a media segment while the utterance renders."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from aiohttp.test_utils import TestClient

from model.clip import Request
from receiver.app import SESSIONS
from receiver.viewer import VIEWER
from receiver.viewer_hub import ViewerConfig

from tests.receiver.conftest import ANNA_TOKEN, AUTH, EventReader


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
