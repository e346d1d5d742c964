"""Issue 28, item 1: a peer with the shared token can neither take over another sender's id nor poison
its sequence numbers; a real sender keeps working through reconnects, restarts and a receiver that
lost its render log."""

from __future__ import annotations

import asyncio
import json

from protocol import codec
from protocol.codec import Code, Outcome
from sender.client import Rendered
from tests.integration.test_bad_input import FailsOnce, _hello

SECRET = b"k" * 32
OTHER = b"x" * 32


async def _outcome(peer, seq: int):
    """The final answer to ``seq``: its RENDERED/DUPLICATE ack, or its Error."""
    while True:
        envelope = await peer.next(timeout=20)
        kind = envelope.WhichOneof("body")
        if kind == "ack" and envelope.ack.seq == seq and envelope.ack.outcome != Outcome.QUEUED:
            return envelope.ack
        if kind == "error" and envelope.error.seq == seq:
            return envelope.error


async def test_a_hello_claiming_a_bound_id_without_its_secret_is_refused(receiver, raw_peer, make_sender):
    alice = await make_sender(receiver, "alice")  # binds "alice" to its secret with its first Hello
    alice.say(text="first")
    assert await alice.drain(20)
    for secret in (OTHER, b""):
        impostor = await raw_peer(receiver)
        impostor.send(codec.encode(codec.hello("alice", secret=secret)))
        error = (await impostor.next("error")).error
        assert error.code == Code.IDENTITY and "alice" in error.reason
        impostor.send(codec.encode(codec.utterance(2, text="in alice's name")))
        assert (await impostor.next("error")).error.code == Code.UNEXPECTED  # no Hello took: nothing is accepted
    # alice was not replaced and still renders
    alice.say(text="second")
    assert await alice.drain(20)
    assert [(await asyncio.wait_for(receiver.rendered.get(), 5)).request.text for _ in range(2)] == ["first", "second"]
    assert receiver.rendered.empty()
    assert json.loads((receiver.out / "senders.json").read_text()).keys() == {"alice"}
    assert (receiver.out / "senders.json").stat().st_mode & 0o777 == 0o600


async def test_a_secretless_hello_cannot_replace_a_live_session_but_the_secret_can(receiver, raw_peer):
    first = await raw_peer(receiver)
    await _hello(first, "legacy")  # an id without a secret (a browser, an old client)
    second = await raw_peer(receiver)
    second.send(codec.encode(codec.hello("legacy")))
    assert (await second.next("error")).error.code == Code.IDENTITY  # could be anyone: the live one stays
    (session,) = [s for s in receiver.sessions().values() if s.sender_id == "legacy"]
    await first.close()  # once the live one is gone, the id may be used again
    await asyncio.wait_for(session.closed.wait(), 10)
    third = await raw_peer(receiver)
    await _hello(third, "legacy")

    owner = await raw_peer(receiver)
    await _hello(owner, "keeper", SECRET)
    (kept,) = [s for s in receiver.sessions().values() if s.sender_id == "keeper"]
    again = await raw_peer(receiver)
    await _hello(again, "keeper", SECRET)  # the same sender reconnecting replaces its old session
    await asyncio.wait_for(kept.closed.wait(), 10)


async def test_the_binding_survives_a_receiver_restart(make_receiver, raw_peer):
    receiver = await make_receiver()
    peer = await raw_peer(receiver)
    await _hello(peer, "bob", SECRET)
    await peer.close()
    await receiver.runner.cleanup()
    restarted = await make_receiver()  # the same out folder
    impostor = await raw_peer(restarted)
    impostor.send(codec.encode(codec.hello("bob", secret=OTHER)))
    assert (await impostor.next("error")).error.code == Code.IDENTITY
    owner = await raw_peer(restarted)
    await _hello(owner, "bob", SECRET)


async def test_sequence_numbers_that_skip_ahead_are_refused_and_nothing_is_taken_as_rendered(receiver, raw_peer):
    peer = await raw_peer(receiver)
    await _hello(peer, "seqs", SECRET)
    peer.send(codec.encode(codec.utterance(2**64 - 1, text="poison")))  # would block the sender for ever
    error = (await peer.next("error")).error
    assert error.code == Code.SEQ_GAP and "#1" in error.reason
    peer.send(codec.encode(codec.utterance(1, text="one")))
    assert (await _outcome(peer, 1)).outcome == Outcome.RENDERED
    peer.send(codec.encode(codec.utterance(3, text="three")))  # skips #2
    assert (await _outcome(peer, 3)).code == Code.SEQ_GAP
    peer.send(codec.encode(codec.utterance(2, text="two")))
    assert (await _outcome(peer, 2)).outcome == Outcome.RENDERED
    texts = [(await asyncio.wait_for(receiver.rendered.get(), 5)).request.text for _ in range(2)]
    assert texts == ["one", "two"] and receiver.rendered.empty()
    log = json.loads((receiver.out / "rendered.json").read_text())
    assert log["last"] == {"seqs": 2}


async def test_a_refused_utterance_resent_gets_its_error_again_not_a_duplicate(make_receiver, raw_peer):
    receiver = await make_receiver(generator=FailsOnce())
    peer = await raw_peer(receiver)
    await _hello(peer, "flaky", SECRET)
    boom = codec.encode(codec.utterance(1, text="boom"))
    peer.send(boom)
    assert (await _outcome(peer, 1)).code == Code.GENERATION_FAILED
    peer.send(codec.encode(codec.utterance(2, text="fine")))
    assert (await _outcome(peer, 2)).outcome == Outcome.RENDERED
    peer.send(boom)  # its Error was lost, say: the resend is told again, not "rendered"
    again = await _outcome(peer, 1)
    assert again.code == Code.GENERATION_FAILED and "simulated" in again.reason


async def test_a_sender_renumbers_for_a_receiver_that_lost_its_render_log(make_receiver, make_sender, tmp_path):
    receiver = await make_receiver()
    outbox = tmp_path / "outbox.jsonl"
    sender = await make_sender(receiver, "amnesia", outbox_path=outbox)
    for text in ("a", "b", "c"):
        sender.say(text=text)
    assert await sender.drain(20)
    await sender.close()
    await receiver.runner.cleanup()
    (receiver.out / "rendered.json").unlink()  # the receiver forgets every number
    restarted = await make_receiver()
    sender = await make_sender(restarted, "amnesia", outbox_path=outbox)
    sender.say(text="after")
    assert await sender.drain(20)
    rendered = await asyncio.wait_for(restarted.rendered.get(), 5)
    assert (rendered.seq, rendered.request.text) == (1, "after")
    events = []
    while not sender.events.empty():
        events.append(sender.events.get_nowait())
    assert any(isinstance(e, Rendered) and e.seq == 1 and not e.duplicate for e in events)
