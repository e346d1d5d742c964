"""Bad frames are answered with an Error naming the problem, and the session keeps serving."""

from __future__ import annotations

import asyncio

import pytest

from protocol import codec
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Outcome


async def _hello(peer, sender_id="raw", secret=b""):
    peer.send(codec.encode(codec.hello(sender_id, secret=secret)))
    return (await peer.next("welcome")).welcome


def _unknown_body() -> bytes:
    # field 99, length-delimited: a body from a protocol this receiver does not know
    return bytes([0x9A, 0x06, 0x02]) + b"hi"


SECRET = b"s" * 32

BAD_FRAMES = [
    ("text frame", "hello as text", Code.BAD_FRAME),
    ("garbage bytes", b"\xff\xff\xff\xff\x0f garbage", Code.BAD_FRAME),
    ("unknown body", _unknown_body(), Code.BAD_MESSAGE),
    ("oversized frame", b"\x00" * (60 * 1024), Code.TOO_LARGE),
    ("blank speech text", pb.Envelope(utterance=pb.Utterance(seq=1, text="   ")).SerializeToString(), Code.EMPTY_FIELD),
    ("seq zero", pb.Envelope(utterance=pb.Utterance(seq=0, text="x")).SerializeToString(), Code.BAD_MESSAGE),
    ("control characters", pb.Envelope(utterance=pb.Utterance(seq=1, text="a\x00b")).SerializeToString(), Code.BAD_MESSAGE),
    ("unknown style", codec.encode(codec.utterance(1, text="x", style_image_id="nobody")), Code.UNKNOWN_STYLE),
    ("a receiver-only message", codec.encode(codec.ack(1, Outcome.RENDERED)), Code.UNEXPECTED),
]


@pytest.mark.parametrize("name,frame,code", BAD_FRAMES, ids=[b[0] for b in BAD_FRAMES])
async def test_bad_frame_is_answered_and_session_goes_on(receiver, raw_peer, name, frame, code):
    peer = await raw_peer(receiver)
    await _hello(peer)
    peer.send(frame)
    error = (await peer.next("error")).error
    assert error.code == code, error.reason
    assert error.reason
    seq = 1
    if code == Code.UNKNOWN_STYLE:  # a well-formed utterance refused for good: its number is used up
        peer.send(frame)  # and a resend of it gets the same answer
        again = (await peer.next("error")).error
        assert (again.code, again.seq) == (Code.UNKNOWN_STYLE, 1) and "nobody" in again.reason
        seq = 2
    # the same session still renders a valid utterance
    peer.send(codec.encode(codec.utterance(seq, text="still here")))
    ack = (await peer.next("ack")).ack
    assert ack.outcome == Outcome.QUEUED
    ack = (await peer.next("ack")).ack
    assert (ack.seq, ack.outcome) == (seq, Outcome.RENDERED)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert rendered.request.text == "still here"


async def test_utterance_before_hello_is_refused(receiver, raw_peer):
    peer = await raw_peer(receiver)
    peer.send(codec.encode(codec.utterance(1, text="too early")))
    error = (await peer.next("error")).error
    assert error.code == Code.UNEXPECTED and error.seq == 1


async def test_wrong_protocol_version_is_refused(receiver, raw_peer):
    peer = await raw_peer(receiver)
    peer.send(pb.Envelope(hello=pb.Hello(sender_id="x", protocol_version=99)).SerializeToString())
    assert (await peer.next("error")).error.code == Code.UNSUPPORTED_VERSION


async def test_resent_utterance_is_a_duplicate_not_a_second_clip(receiver, raw_peer):
    peer = await raw_peer(receiver)
    await _hello(peer)
    frame = codec.encode(codec.utterance(1, text="once"))
    peer.send(frame)
    while (await peer.next("ack")).ack.outcome != Outcome.RENDERED:
        pass
    peer.send(frame)
    assert (await peer.next("ack")).ack.outcome == Outcome.DUPLICATE
    await asyncio.sleep(0.2)
    assert receiver.rendered.qsize() == 1


async def test_other_sessions_unaffected_by_a_bad_peer(receiver, raw_peer, make_sender):
    bad = await raw_peer(receiver)
    await _hello(bad, "bad")
    good = await make_sender(receiver, sender_id="good")
    for _ in range(20):
        bad.send(b"\x00garbage")
    good.say(text="unbothered")
    assert await good.drain(30)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert rendered.sender_id == "good"


async def test_style_image_upload_then_use(receiver, make_sender, tmp_path):
    import cv2

    from model.corpus.face import FaceRenderer, FaceState
    from model.corpus.speakers import make_speakers

    # a drawn face (a flat image is refused for having no face: tests/integration/test_call_face.py)
    image = FaceRenderer(make_speakers(1, 1)[1].look).render(FaceState(opening=0.2))  # BGR
    ok, png = cv2.imencode(".png", image)
    sender = await make_sender(receiver)
    sender.upload_style_image("mine", png.tobytes())
    sender.say(text="my own face", style_image_id="mine")
    assert await sender.drain(30)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert rendered.request.style_image is not None and rendered.request.style_image.exists()


async def test_upload_that_is_not_an_image_is_refused(receiver, raw_peer):
    peer = await raw_peer(receiver)
    await _hello(peer)
    for chunk in codec.style_image_chunks("junk", b"this is not an image at all"):
        peer.send(codec.encode(chunk))
    error = (await peer.next("error")).error
    assert error.code == Code.BAD_IMAGE and "PNG or JPEG" in error.reason


async def test_an_image_that_fails_to_decode_is_refused_and_so_is_the_utterance_using_it(receiver, raw_peer, monkeypatch):
    """The full decode runs in a worker thread, not on the event loop (issue 28: a 16-Mpixel decode
    stalled every session); its failure still reaches the sender, and an utterance sent right after
    the upload, naming it, is answered with an Error instead of rendering without it."""
    import threading

    import receiver.gallery as gallery

    threads = []
    real = gallery.check_image

    def spy(data, *args, **kwargs):
        threads.append(threading.current_thread())
        return real(data, *args, **kwargs)

    monkeypatch.setattr(gallery, "check_image", spy)
    header = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + (64).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    broken = header + b"\x00" * 4 + b"this is no image data" * 20  # a valid header over a body that does not decode
    peer = await raw_peer(receiver)
    await _hello(peer)
    for chunk in codec.style_image_chunks("broken", broken):
        peer.send(codec.encode(chunk))
    peer.send(codec.encode(codec.utterance(1, text="with my face", style_image_id="broken")))
    errors = [(await peer.next("error")).error for _ in range(2)]
    assert {e.code for e in errors} == {Code.BAD_IMAGE, Code.UNKNOWN_STYLE}
    assert [e.seq for e in errors if e.code == Code.UNKNOWN_STYLE] == [1]
    assert threads and all(t is not threading.main_thread() for t in threads)


class FailsOnce:
    name = "flaky"

    def __init__(self):
        from model.stub import StubGenerator

        self.stub = StubGenerator()

    def generate(self, request):
        if request.text == "boom":
            raise RuntimeError("CUDA out of memory (simulated)")
        return self.stub.generate(request)


async def test_generation_failure_answers_that_utterance_and_session_continues(make_receiver, make_sender):
    receiver = await make_receiver(generator=FailsOnce())
    sender = await make_sender(receiver)
    for text in ("before", "boom", "after"):
        sender.say(text=text)
    assert await sender.drain(30)
    texts = [(await asyncio.wait_for(receiver.rendered.get(), 10)).request.text for _ in range(2)]
    assert texts == ["before", "after"]


class Slow:
    """A generator that takes longer than the receiver's silence limit."""

    name = "slow"

    def __init__(self, seconds: float) -> None:
        from model.stub import StubGenerator

        self.stub, self.seconds = StubGenerator(), seconds

    def generate(self, request):
        import time

        time.sleep(self.seconds)
        return self.stub.generate(request)


async def test_a_standard_peer_that_never_pings_still_gets_its_clip(make_receiver, raw_peer):
    """A silent peer is not dropped while its clip renders, nor while its ICE consent holds (issue 28:
    a headless-Chromium sender lost its clip this way)."""
    receiver = await make_receiver(generator=Slow(2.5))
    peer = await raw_peer(receiver)
    await _hello(peer)
    (session,) = receiver.sessions().values()
    session.dead_after = 0.5  # far less than the render takes
    peer.send(codec.encode(codec.utterance(1, text="say this slowly")))
    while True:
        ack = (await peer.next("ack", timeout=20)).ack
        if ack.outcome == Outcome.RENDERED:
            break
    assert ack.seq == 1 and not session.closed.is_set()
    await asyncio.sleep(1.5)  # idle now, silent, but its transport is up: still there
    assert not session.closed.is_set()


async def test_a_clip_whose_session_ended_mid_render_lands_and_its_resend_is_a_duplicate(make_receiver, raw_peer):
    """Issue 28: a render in progress is never thrown away because its session ended; the clip is
    recorded and marked, and the sender's resend after reconnecting is acked as a duplicate."""
    import json

    from model.stub import StubGenerator

    receiver = await make_receiver(generator=StubGenerator(pace=1.0))  # 3.6 s of media: 3.6 s of work
    peer = await raw_peer(receiver)
    await _hello(peer, "vanishing")
    (session,) = receiver.sessions().values()
    frame = codec.encode(codec.utterance(1, text="x" * 60))
    peer.send(frame)
    await asyncio.sleep(1.0)  # rendering now
    await peer.close()  # the sender vanishes mid-render
    await asyncio.wait_for(session.closed.wait(), 10)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 20)  # the clip still lands
    assert rendered.seq == 1 and rendered.files and rendered.files[0].exists()
    journal = [json.loads(line) for line in (receiver.out / session.id / "session.jsonl").read_text().splitlines()]
    assert any(e["event"] == "rendered" and e.get("session_closed") for e in journal)
    for _ in range(100):  # close() finishes after the render: then the whole call is recorded too
        if (receiver.out / session.id / "session.mp4").exists():
            break
        await asyncio.sleep(0.1)
    assert (receiver.out / session.id / "session.mp4").exists()
    again = await raw_peer(receiver)  # the sender reconnects and its outbox resends #1
    await _hello(again, "vanishing")
    again.send(frame)
    assert (await again.next("ack")).ack.outcome == Outcome.DUPLICATE
    assert receiver.rendered.empty()


async def test_a_resend_waiting_behind_its_first_rendering_is_a_duplicate(make_receiver, raw_peer):
    """A sender that reconnects while its utterance still renders in the old session: the resend waits
    for the generation thread and is then acked as a duplicate, not rendered a second time."""
    from model.stub import StubGenerator

    receiver = await make_receiver(generator=StubGenerator(pace=1.0))
    peer = await raw_peer(receiver)
    await _hello(peer, "hasty", SECRET)
    frame = codec.encode(codec.utterance(1, text="x" * 40))  # 2.4 s of work
    peer.send(frame)
    await asyncio.sleep(0.8)
    again = await raw_peer(receiver)  # a newer connection of the same sender (its secret) replaces the first
    await _hello(again, "hasty", SECRET)
    again.send(frame)
    while (ack := (await again.next("ack", timeout=20)).ack).outcome == Outcome.QUEUED:
        pass
    assert ack.outcome == Outcome.DUPLICATE
    first = await asyncio.wait_for(receiver.rendered.get(), 5)
    assert first.seq == 1 and receiver.rendered.empty()


async def test_style_image_frames_are_rate_limited(receiver, raw_peer):
    """Issue 28: StyleImage frames were not rate-limited. A flood is refused beyond 2 s worth of the
    allowance (RATE_LIMITED), the session goes on, and an upload at a sane pace is stored."""
    from protocol import textcall_pb2 as pb
    from receiver.session import STYLE_CHUNKS_PER_SECOND

    peer = await raw_peer(receiver)
    await _hello(peer)
    count = 3 * STYLE_CHUNKS_PER_SECOND
    for k in range(count):  # a flood of tiny chunks of one upload
        peer.send(pb.Envelope(style_image=pb.StyleImage(id="flood", chunk_index=k, chunk_count=count,
                                                        total_bytes=count, data=b"x")).SerializeToString())
    error = (await peer.next("error")).error
    assert error.code == Code.RATE_LIMITED and "chunks per second" in error.reason
    peer.send(codec.encode(codec.utterance(1, text="still here")))
    while (ack := (await peer.next("ack")).ack).outcome != Outcome.RENDERED:
        pass
    assert ack.seq == 1
