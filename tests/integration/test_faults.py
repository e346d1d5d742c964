"""Faults: every utterance is rendered exactly once, in order, whatever breaks in between."""

from __future__ import annotations

import asyncio
import time

from model.stub import StubGenerator


class SlowStub(StubGenerator):
    """Takes a while per clip so faults land mid-stream."""

    def __init__(self, delay: float = 0.15) -> None:
        super().__init__()
        self.delay = delay

    def draw(self, request, face):  # every clip, in a call or not, is drawn here
        time.sleep(self.delay)
        return super().draw(request, face)


def _rendered(receiver):
    items = []
    while not receiver.rendered.empty():
        items.append(receiver.rendered.get_nowait())
    return items


async def test_transport_drop_mid_stream(make_receiver, make_sender):
    receiver = await make_receiver(generator=SlowStub())
    sender = await make_sender(receiver, ping_interval=0.3, dead_after=2.0, max_backoff=0.5)
    for i in range(12):
        sender.say(text=f"utterance {i}")
    while receiver.rendered.qsize() < 3:
        await asyncio.sleep(0.05)
    for session in list(receiver.sessions().values()):
        await session.pc.close()  # the transport vanishes under both peers
    assert await sender.drain(60)
    seqs = [r.seq for r in _rendered(receiver)]
    assert seqs == list(range(1, 13)), seqs


async def test_sender_restart_with_unacked_utterances(make_receiver, make_sender, tmp_path):
    receiver = await make_receiver(generator=SlowStub(0.3))
    outbox = tmp_path / "outbox.jsonl"
    first = await make_sender(receiver, sender_id="restarts", outbox_path=outbox)
    for i in range(6):
        first.say(text=f"line {i}")
    while receiver.rendered.qsize() < 2:
        await asyncio.sleep(0.05)
    await first.close()  # the process "dies" with utterances unacked
    second = await make_sender(receiver, sender_id="restarts", outbox_path=outbox)
    assert len(second.outbox) >= 1
    assert await second.drain(60)
    await asyncio.sleep(0.5)
    seqs = [r.seq for r in _rendered(receiver)]
    assert seqs == list(range(1, 7)), seqs
    second.say(text="after the restart")
    assert await second.drain(30)
    assert (await asyncio.wait_for(receiver.rendered.get(), 10)).seq == 7


async def test_receiver_restart_keeps_its_render_log(make_receiver, make_sender, tmp_path):
    receiver = await make_receiver()
    sender = await make_sender(receiver, sender_id="steady")
    sender.say(text="first life")
    assert await sender.drain(30)
    await sender.close()
    await receiver.runner.cleanup()
    again = await make_receiver()  # same out folder, so the same rendered.json
    resend = await make_sender(again, sender_id="steady", outbox_path=None)
    resend.say(text="second life")
    assert await resend.drain(30)
    rendered = await asyncio.wait_for(again.rendered.get(), 10)
    assert rendered.seq == 2 and rendered.request.text == "second life"


async def test_window_holds_the_sender_back(make_receiver, make_sender):
    from sender.client import Waiting

    receiver = await make_receiver(generator=SlowStub(0.1), queue_size=2)
    sender = await make_sender(receiver)
    for i in range(8):
        sender.say(text=f"burst {i}")
    assert await sender.drain(60)
    events = []
    while not sender.events.empty():
        events.append(sender.events.get_nowait())
    assert any(isinstance(e, Waiting) for e in events)
    assert [r.seq for r in _rendered(receiver)] == list(range(1, 9))
