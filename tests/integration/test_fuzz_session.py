"""Fuzzing a live session over a real data channel, while a second session keeps calling.

A receiver (stub generator) runs on an event loop in a background thread, with two peers: a raw
peer that sends hypothesis-generated frames, and a well-behaved ``Sender``. After each fuzz frame the
raw peer sends a ``Ping``; the channel is ordered, so every reply to the fuzz frame arrives before the
matching ``Pong``. Each frame the codec refuses must be answered with an ``Error`` carrying that code
and a reason; frames the codec accepts may be answered or not, but never with ``INTERNAL``. The
receiver stays up and the well-behaved sender's utterances are all rendered, in order.

The receiver records (journals, clips, uploads, the render log), and the frames include style
uploads at the size caps and sequence numbers that jump. Afterwards the bystander's clips are all
complete and readable and no partial file is left. Default run: a couple of hundred frames.
``-m slow``: 10,000.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings

from protocol import codec
from protocol.codec import Code, ProtocolError
from receiver.app import SESSIONS
from receiver.config import ReceiverConfig
from receiver.serve import start
from sender.client import Sender, SenderConfig
from tests.integration.conftest import TOKEN, RawPeer
from tests.protocol.strategies import live_frames as frames


class LiveTarget:
    """Receiver + fuzzing peer + well-behaved sender on a loop in a background thread."""

    def __init__(self, tmp_path) -> None:
        self.tmp_path = tmp_path
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="fuzz-loop", daemon=True)
        self.thread.start()
        self.nonces = itertools.count(1_000_000)
        self.outcomes: Counter[str] = Counter()
        self.good_said = 0
        self.good_rendered: list[int] = []

    def call(self, coro, timeout: float = 60.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def setup(self) -> None:
        config = ReceiverConfig(
            tokens=frozenset({TOKEN}), out_dir=self.tmp_path / "out", port=0, loopback=True,
            record=True, max_utterances_per_second=1000.0,
        )  # fmt: skip
        self.runner, self.url = await start(config, sinks=[self._on_rendered])
        self.peer = RawPeer()
        await self.peer.connect(self.url)
        self.peer.send(codec.encode(codec.hello("fuzz")))
        await self.peer.next("welcome")
        self.good = Sender(SenderConfig(receiver_url=self.url, token=TOKEN, sender_id="bystander", loopback=True))
        await self.good.start()

    def _on_rendered(self, rendered) -> None:
        if rendered.sender_id == "bystander":
            self.good_rendered.append(rendered.seq)

    async def probe(self, frame: bytes | str) -> list:
        """Send one frame, then a Ping; return what came back before its Pong."""
        nonce = next(self.nonces)
        self.peer.send(frame)
        self.peer.send(codec.encode(codec.ping(nonce)))
        replies = []
        while True:
            envelope = await self.peer.next(timeout=10.0)
            if envelope.WhichOneof("body") == "pong" and envelope.pong.nonce == nonce:
                return replies
            replies.append(envelope)

    async def say_good(self) -> None:
        self.good_said += 1
        self.good.say(text=f"bystander line {self.good_said}")

    async def teardown(self) -> None:
        await self.good.close()
        await self.peer.close()
        await self.runner.cleanup()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    target = LiveTarget(tmp_path_factory.mktemp("fuzz"))
    target.call(target.setup())
    yield target
    try:
        target.call(target.teardown())
    finally:
        target.loop.call_soon_threadsafe(target.loop.stop)
        target.thread.join(10)


def fuzz_one(live: LiveTarget, frame: bytes | str) -> None:
    try:
        codec.decode(frame)
        expected = None
    except ProtocolError as exc:
        expected = exc
    if expected is None:
        kind = codec.decode(frame).WhichOneof("body")
        assume(kind != "bye")  # a valid Bye ends the session: not a bad frame
    replies = live.call(live.probe(frame))
    errors = [r.error for r in replies if r.WhichOneof("body") == "error"]
    assert all(e.reason for e in errors), errors
    assert not any(e.code == Code.INTERNAL for e in errors), errors
    if expected is not None:
        assert any(e.code == expected.code for e in errors), (frame[:80], expected.reason, replies)
        live.outcomes[codec.code_name(expected.code)] += 1
    else:
        live.outcomes["accepted:" + kind] += 1
    if sum(live.outcomes.values()) % 50 == 0:
        live.call(live.say_good())


def _check_afterwards(live: LiveTarget) -> None:
    live.call(live.say_good())
    assert live.call(live.good.drain(120), timeout=130)
    assert live.good_rendered == list(range(1, live.good_said + 1))
    # the fuzzed session is still there and still answers
    replies = live.call(live.probe(b"\xff\xff not protobuf"))  # (acks of fuzzed utterances may still come in)
    assert [r.error.code for r in replies if r.WhichOneof("body") == "error"] == [Code.BAD_FRAME]
    sessions = live.runner.app[SESSIONS]
    assert len(sessions) == 2, sessions
    # what was recorded for the bystander is complete and readable; nothing half-written lies around
    from receiver.recorder import read_mp4

    (bystander,) = [s for s in sessions.values() if s.sender_id == "bystander"]
    clips = sorted(bystander.folder.glob("[0-9][0-9][0-9][0-9].mp4"))
    assert len(clips) == live.good_said
    assert all(read_mp4(c)[0].shape[0] > 0 for c in clips)
    out = live.tmp_path / "out"  # (a live session's whole-call recording is finished when it closes)
    assert not [p for p in out.rglob("*.part") if p.name != ".session.mp4.part"]


# aiortc/aioice draw from the `random` module on the loop thread while hypothesis generates a frame on
# this one; hypothesis notices and warns as if a strategy had used it. The strategies do not.
RANDOM_ON_ANOTHER_THREAD = pytest.mark.filterwarnings("ignore:Do not use the `random` module")


@RANDOM_ON_ANOTHER_THREAD
@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frames)
def test_live_session_survives_fuzzed_frames(live, frame):
    fuzz_one(live, frame)


def test_live_session_after_fuzzing(live):
    assert sum(live.outcomes.values()) >= 100, live.outcomes
    _check_afterwards(live)
    print(f"live fuzz outcomes: {dict(live.outcomes)}")


@pytest.mark.slow
@RANDOM_ON_ANOTHER_THREAD
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(frames)
def test_live_session_survives_10k_fuzzed_frames(live, frame):
    fuzz_one(live, frame)


@pytest.mark.slow
def test_live_session_after_10k(live):
    assert sum(live.outcomes.values()) >= 10_000, live.outcomes
    _check_afterwards(live)
    print(f"live fuzz outcomes: {dict(live.outcomes)}")
