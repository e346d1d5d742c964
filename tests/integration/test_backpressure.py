"""Backpressure: a slow generator makes the sender wait (it is told, it does not pile up) and what
the receiver holds per session stays bounded by its window, however many utterances are queued."""

from __future__ import annotations

import asyncio

from sender.client import ReceiverError, Waiting
from tests.integration.test_faults import SlowStub

WINDOW = 3
UTTERANCES = 40


async def test_slow_generator_bounds_queues_on_both_sides(make_receiver, make_sender):
    receiver = await make_receiver(generator=SlowStub(0.04), queue_size=WINDOW)
    sender = await make_sender(receiver, sender_id="patient")
    for i in range(UTTERANCES):
        sender.say(text=f"line {i}")
    deepest_inbox = deepest_queued = most_in_flight = 0

    async def watch() -> None:
        nonlocal deepest_inbox, deepest_queued, most_in_flight
        while True:
            for session in receiver.sessions().values():
                deepest_inbox = max(deepest_inbox, session.inbox.qsize())
                deepest_queued = max(deepest_queued, len(session._queued))
            if sender._conn is not None:
                most_in_flight = max(most_in_flight, len(sender._conn.in_flight))
            await asyncio.sleep(0.005)

    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        assert await sender.drain(120)
    finally:
        watcher.cancel()
    events = []
    while not sender.events.empty():
        events.append(sender.events.get_nowait())
    assert any(isinstance(e, Waiting) for e in events), "the sender was never told to wait"
    refused = [e for e in events if isinstance(e, ReceiverError) and e.code == "QUEUE_FULL"]
    assert not refused, "the sender overran the receiver's window"
    assert 1 <= most_in_flight <= WINDOW
    assert deepest_inbox <= WINDOW and deepest_queued <= WINDOW
    seqs = []
    while not receiver.rendered.empty():
        seqs.append(receiver.rendered.get_nowait().seq)
    assert seqs == list(range(1, UTTERANCES + 1))
