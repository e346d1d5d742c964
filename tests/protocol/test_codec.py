from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Limits, Outcome, ProtocolError


@pytest.mark.parametrize(
    "envelope",
    [
        codec.hello("laptop-1", ("style-upload",)),
        codec.welcome("abc123", last_rendered_seq=4, window=8, model="stub"),
        codec.utterance(1, caption="A woman is talking", text="Hello, world!", style_image_id="anna"),
        codec.utterance(2),
        codec.ack(3, Outcome.RENDERED, media_seconds=1.5, render_ms=120),
        codec.error(Code.QUEUE_FULL, "wait", 7),
        codec.ping(9),
        codec.bye("done"),
    ],
)
def test_round_trip(envelope):
    assert codec.decode(codec.encode(envelope)) == envelope


def test_error_seq_is_optional():
    assert not codec.decode(codec.encode(codec.error(Code.BAD_FRAME, "x"))).error.HasField("seq")
    assert codec.decode(codec.encode(codec.error(Code.BAD_FRAME, "x", 0))).error.HasField("seq")


@pytest.mark.parametrize(
    "frame,code",
    [
        ("a str frame", Code.BAD_FRAME),
        (b"\xff\xff\xff", Code.BAD_FRAME),
        (b"", Code.BAD_MESSAGE),
        (b"\x00" * (Limits().max_frame_bytes + 1), Code.TOO_LARGE),
    ],
)
def test_bad_frames(frame, code):
    with pytest.raises(ProtocolError) as info:
        codec.decode(frame)
    assert info.value.code == code


@pytest.mark.parametrize(
    "utterance,code",
    [
        (pb.Utterance(seq=0), Code.BAD_MESSAGE),
        (pb.Utterance(seq=1, text=" \n\t"), Code.EMPTY_FIELD),
        (pb.Utterance(seq=1, caption="  "), Code.EMPTY_FIELD),
        (pb.Utterance(seq=1, text="x" * 10_001), Code.TOO_LARGE),
        (pb.Utterance(seq=1, caption="x" * 201), Code.TOO_LARGE),
        (pb.Utterance(seq=1, text="bell\x07"), Code.BAD_MESSAGE),
        (pb.Utterance(seq=1, style_image_id="../etc/passwd"), Code.BAD_MESSAGE),
    ],
)
def test_bad_utterances_carry_their_seq(utterance, code):
    with pytest.raises(ProtocolError) as info:
        codec.decode(pb.Envelope(utterance=utterance).SerializeToString())
    assert info.value.code == code
    if utterance.seq:
        assert info.value.seq == utterance.seq


def test_text_with_newlines_and_unicode_is_fine():
    envelope = codec.utterance(1, text="Grüße!\nZweite Zeile, 2 × 3 = 6 😀")
    assert codec.decode(codec.encode(envelope)).utterance.text.endswith("😀")


def test_hello_checks():
    with pytest.raises(ProtocolError) as info:
        codec.decode(pb.Envelope(hello=pb.Hello(sender_id="", protocol_version=1)).SerializeToString())
    assert info.value.code == Code.EMPTY_FIELD
    with pytest.raises(ProtocolError) as info:
        codec.decode(pb.Envelope(hello=pb.Hello(sender_id="a b", protocol_version=1)).SerializeToString())
    assert info.value.code == Code.BAD_MESSAGE


def test_style_image_chunks_fit_frames_and_reassemble():
    data = bytes(range(256)) * 500  # 128,000 bytes -> 4 chunks
    chunks = codec.style_image_chunks("face", data)
    assert len(chunks) == 4
    frames = [codec.encode(c) for c in chunks]
    assert max(len(f) for f in frames) <= Limits().max_frame_bytes
    assert b"".join(codec.decode(f).style_image.data for f in frames) == data
    with pytest.raises(ProtocolError):
        codec.style_image_chunks("face", b"")
    with pytest.raises(ProtocolError) as info:
        codec.style_image_chunks("face", b"x" * (Limits().max_style_image_bytes + 1))
    assert info.value.code == Code.TOO_LARGE


def test_limits_validate_themselves():
    with pytest.raises(ValueError):
        Limits(max_frame_bytes=1000)
    with pytest.raises(ValueError):
        Limits(max_text_chars=0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4096))
def test_random_bytes_never_escape_as_anything_but_protocol_error(frame):
    try:
        envelope = codec.decode(frame)
    except ProtocolError as exc:
        assert exc.reason
    else:
        assert envelope.WhichOneof("body") is not None


def test_an_ack_may_cover_a_range_of_rendered_seqs():
    ack = codec.decode(codec.encode(codec.ack(7, codec.Outcome.RENDERED, first_seq=3))).ack
    assert (ack.first_seq, ack.seq) == (3, 7)
    assert codec.ack(7, codec.Outcome.RENDERED, first_seq=7).ack.first_seq == 0  # one seq: no range
    for bad in (pb.Ack(seq=3, outcome=codec.Outcome.RENDERED, first_seq=5),  # backwards
                pb.Ack(seq=3, outcome=codec.Outcome.DUPLICATE, first_seq=1),  # only RENDERED takes a range
                pb.Ack(seq=500, outcome=codec.Outcome.RENDERED, first_seq=1)):  # too long a run
        with pytest.raises(ProtocolError, match="first_seq"):
            codec.decode(pb.Envelope(ack=bad).SerializeToString())
