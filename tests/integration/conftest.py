"""Two real aiortc peers on loopback: the receiver app (stub generator) and a Sender, one process."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from protocol import codec
from protocol.rtc import loopback_only, rtc_configuration
from receiver.config import ReceiverConfig
from receiver.serve import start
from receiver.session import Rendered
from sender.client import Sender, SenderConfig

TOKEN = "test-token-123456"


class ReceiverUnderTest:
    def __init__(self, runner, url: str, rendered: asyncio.Queue, out: Path) -> None:
        self.runner = runner
        self.url = url
        self.rendered = rendered
        self.out = out

    @property
    def app(self):
        return self.runner.app

    def sessions(self) -> dict:
        from receiver.app import SESSIONS

        return self.app[SESSIONS]


@pytest.fixture
async def receiver(make_receiver):
    return await make_receiver()


async def _start_receiver(tmp_path: Path, generator=None, **overrides) -> ReceiverUnderTest:
    rendered: asyncio.Queue[Rendered] = asyncio.Queue()
    config = ReceiverConfig(
        tokens=frozenset({TOKEN}), out_dir=tmp_path / "out", port=0, loopback=True, **overrides
    )
    runner, url = await start(config, sinks=[rendered.put_nowait], generator=generator)
    return ReceiverUnderTest(runner, url, rendered, config.out_dir)


@pytest.fixture
async def make_receiver(tmp_path):
    started = []

    async def make(generator=None, **overrides):
        r = await _start_receiver(tmp_path, generator, **overrides)
        started.append(r)
        return r

    yield make
    for r in started:
        await r.runner.cleanup()


@pytest.fixture
async def make_sender():
    senders: list[Sender] = []

    async def make(receiver: ReceiverUnderTest, sender_id: str = "tester", **overrides) -> Sender:
        overrides.setdefault("loopback", True)  # machines whose only interface is loopback must pass too
        config = SenderConfig(receiver_url=receiver.url, token=TOKEN, sender_id=sender_id, **overrides)
        sender = Sender(config)
        await sender.start()
        senders.append(sender)
        return sender

    yield make
    for sender in senders:
        await sender.close()


class RawPeer:
    """A peer that sends arbitrary frames, for bad-input tests."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(rtc_configuration())
        self.channel = self.pc.createDataChannel(codec.CHANNEL_LABEL)
        loopback_only(self.pc)
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.channel.on("message", lambda frame: self.inbox.put_nowait(codec.decode(frame)))

    async def connect(self, url: str, token: str = TOKEN) -> None:
        opened = asyncio.Event()
        self.channel.on("open", opened.set)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        offer = {"sdp": self.pc.localDescription.sdp, "type": "offer"}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                url + "/offer", data=json.dumps(offer), headers={"Authorization": f"Bearer {token}"}
            ) as response:
                assert response.status == 200, await response.text()
                answer = await response.json()
        from aiortc import RTCSessionDescription

        await self.pc.setRemoteDescription(RTCSessionDescription(**answer))
        await asyncio.wait_for(opened.wait(), 10)

    def send(self, frame) -> None:
        self.channel.send(frame)

    async def next(self, kind: str | None = None, timeout: float = 10.0):
        while True:
            envelope = await asyncio.wait_for(self.inbox.get(), timeout)
            if kind is None or envelope.WhichOneof("body") == kind:
                return envelope

    async def close(self) -> None:
        await self.pc.close()


@pytest.fixture
async def raw_peer():
    peers: list[RawPeer] = []

    async def make(receiver: ReceiverUnderTest) -> RawPeer:
        peer = RawPeer()
        await peer.connect(receiver.url)
        peers.append(peer)
        return peer

    yield make
    for peer in peers:
        await peer.close()
