"""Backpressure: a slow generator makes the sender wait (it is told, it does not pile up) and what
the receiver holds per session stays bounded by its window, however many utterances are queued."""

from __future__ import annotations

import asyncio

from protocol import codec
from protocol.codec import Code
from sender.client import ReceiverError, Waiting
from tests.integration.conftest import TOKEN
from tests.integration.processes import Process, textcall_command
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


async def test_refusals_to_retry_later_keep_the_order(make_receiver, raw_peer):
    """Once #3 is refused for the rate, #4 must wait for it even when the bucket has refilled:
    accepting #4 first would render out of order, and the resent #3 would then look like a
    duplicate of what was rendered and be lost."""
    receiver = await make_receiver(max_utterances_per_second=2.0, queue_size=2)
    peer = await raw_peer(receiver)
    peer.send(codec.encode(codec.hello("bursty")))
    await peer.next("welcome")
    for seq in (1, 2, 3):
        peer.send(codec.encode(codec.utterance(seq, text=f"line {seq}")))
    error = (await peer.next("error")).error
    assert (error.code, error.seq) == (Code.RATE_LIMITED, 3)
    await asyncio.sleep(1.2)  # the bucket has tokens again
    peer.send(codec.encode(codec.utterance(4, text="line 4")))
    error = (await peer.next("error")).error
    assert (error.code, error.seq) == (Code.RATE_LIMITED, 4) and "#3" in error.reason
    for seq in (3, 4):
        peer.send(codec.encode(codec.utterance(seq, text=f"line {seq}")))
    seqs = [(await asyncio.wait_for(receiver.rendered.get(), 10)).seq for _ in range(4)]
    assert seqs == [1, 2, 3, 4]


async def test_a_rate_limited_sender_loses_nothing(make_receiver, make_sender):
    # no MP4s: a clip is then acked within milliseconds and the sender outruns 20 per second on any
    # machine (writing each MP4 took about 60 ms on one CI machine, so it never got throttled there)
    receiver = await make_receiver(max_utterances_per_second=20.0, queue_size=4, record=False)
    sender = await make_sender(receiver, sender_id="hasty")
    lines = [f"line {i}" for i in range(1, 31)]
    for line in lines:
        sender.say(text=line)
    assert await sender.drain(60)
    events = []
    while not sender.events.empty():
        events.append(sender.events.get_nowait())
    assert any(isinstance(e, ReceiverError) and e.code == "RATE_LIMITED" for e in events)
    rendered = []
    while not receiver.rendered.empty():
        rendered.append(receiver.rendered.get_nowait())
    assert [r.seq for r in rendered] == list(range(1, len(lines) + 1))
    assert [r.request.text for r in rendered] == lines
    assert len(sender.outbox) == 0


async def test_script_sender_is_told_to_slow_down_and_renders_everything(make_receiver, tmp_path):
    """`textcall send --script` as a user runs it, against a receiver limited to 5 utterances/s."""
    receiver = await make_receiver(max_utterances_per_second=5.0)
    script = tmp_path / "lines.txt"
    script.write_text("".join(f"line number {i}\n" for i in range(1, 21)))
    argv = textcall_command(
        "send", "--receiver", receiver.url, "--token", TOKEN, "--sender-id", "scripted",
        "--script", str(script), "--outbox", "none", "--loopback", "--timeout", "60",
    )  # fmt: skip
    process = Process(argv, tmp_path / "sender.log")
    try:
        code = await asyncio.get_running_loop().run_in_executor(None, process.wait, 90)
    finally:
        process.kill()
    output = process.output()
    assert code == 0, output
    assert "receiver asks to slow down (RATE_LIMITED" in output and "resending in 1 s" in output
    assert "20 rendered, 0 refused, 0 unsent" in output
    seqs = []
    while not receiver.rendered.empty():
        seqs.append(receiver.rendered.get_nowait().seq)
    assert seqs == list(range(1, 21))
