"""Utterance.packed: DEFLATE with the shared preset dictionary, round trips, limits, bombs."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import codec, textpack
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Limits, ProtocolError

SENTENCE = "Good morning, everyone, and thank you for joining the call today."


def test_dictionary_is_frozen():
    data = textpack.dictionary(1)
    assert hashlib.sha256(data).hexdigest() == textpack.DICTIONARIES[1]
    assert len(data) <= 32 * 1024  # DEFLATE only sees the last 32 KiB of a preset dictionary
    assert data.endswith(b" the")  # most frequent words last: nearest, so cheapest to point at


def test_unknown_dictionary_is_refused():
    with pytest.raises(textpack.PackError):
        textpack.dictionary(99)


@settings(max_examples=60, deadline=None)
@given(
    caption=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1f"), max_size=60),
    text=st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x1f"), max_size=400),
)
def test_pack_round_trip(caption, text):
    packed = textpack.pack(caption, text, 1)
    assert textpack.unpack(packed, 1, max_bytes=10_000) == (caption, text)


def test_dictionary_makes_english_smaller():
    raw = len(SENTENCE.encode())
    plain = zlib.compressobj(9, zlib.DEFLATED, -15)
    without = len(plain.compress(SENTENCE.encode()) + plain.flush())
    packed = len(textpack.pack("", SENTENCE, 1))
    assert packed < 0.7 * raw and packed < without


def test_codec_round_trip_restores_caption_and_text():
    envelope = codec.utterance(5, caption="A woman is talking", text=SENTENCE, sent_unix_ms=1, dictionary=1)
    assert envelope.utterance.packed and not envelope.utterance.text
    frame = codec.encode(envelope)
    plain = codec.encode(codec.utterance(5, caption="A woman is talking", text=SENTENCE, sent_unix_ms=1))
    assert len(frame) < len(plain)
    decoded = codec.decode(frame).utterance
    assert (decoded.caption, decoded.text, decoded.packed, decoded.dictionary) == (
        "A woman is talking", SENTENCE, b"", 0)


def test_plain_text_is_kept_when_packing_does_not_help():
    envelope = codec.utterance(1, text="ok", dictionary=1)
    assert envelope.utterance.text == "ok" and not envelope.utterance.packed


def test_old_fields_still_work_beside_new_ones():
    frame = codec.encode(codec.utterance(3, caption="c", text="t", style_image_id="anna", sent_unix_ms=9))
    decoded = codec.decode(frame).utterance
    assert (decoded.caption, decoded.text, decoded.style_image_id, decoded.dictionary) == ("c", "t", "anna", 0)


def _packed_frame(data: bytes, dictionary: int = 1, **fields) -> bytes:
    return pb.Envelope(utterance=pb.Utterance(seq=1, packed=data, dictionary=dictionary, **fields)).SerializeToString()


def test_decompression_bomb_is_refused():
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, textpack.dictionary(1))
    data = bomb.compress(b"\x1f" + b"a" * 5_000_000) + bomb.flush()
    assert len(data) < 48 * 1024  # fits a frame: the cap, not the frame limit, must stop it
    with pytest.raises(ProtocolError) as caught:
        codec.decode(_packed_frame(data))
    assert caught.value.code == Code.TOO_LARGE and caught.value.seq == 1
    with pytest.raises(textpack.PackError):
        textpack.unpack(data, 1, max_bytes=1000)


def test_text_over_the_limit_after_inflating_is_refused():
    limits = Limits(max_text_chars=50)
    data = textpack.pack("", "word " * 40, 1)  # 200 characters, well under the byte cap
    with pytest.raises(ProtocolError) as caught:
        codec.decode(_packed_frame(data), limits)
    assert caught.value.code == Code.TOO_LARGE


@pytest.mark.parametrize(
    "frame",
    [
        _packed_frame(b"\xff\xfe\xfd"),  # not DEFLATE
        _packed_frame(textpack.pack("", SENTENCE, 1)[:-3]),  # truncated
        _packed_frame(textpack.pack("", SENTENCE, 1) + b"junk"),  # trailing bytes
        _packed_frame(textpack.pack("", SENTENCE, 1), dictionary=7),  # unknown dictionary
        _packed_frame(textpack.pack("", SENTENCE, 1), dictionary=0),  # no dictionary named
        _packed_frame(textpack.pack("", SENTENCE, 1), text="both"),  # packed and plain at once
        _packed_frame(textpack.pack("", "bell\x07", 1)),  # control characters inside
    ],
)
def test_bad_packed_utterances_are_refused(frame):
    with pytest.raises(ProtocolError):
        codec.decode(frame)


def test_inflated_without_separator_is_refused():
    squeeze = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, textpack.dictionary(1))
    data = squeeze.compress(b"no separator here") + squeeze.flush()
    with pytest.raises(ProtocolError):
        codec.decode(_packed_frame(data))


def test_dictionary_without_packed_is_refused():
    with pytest.raises(ProtocolError):
        codec.decode(pb.Envelope(utterance=pb.Utterance(seq=1, text="hi", dictionary=1)).SerializeToString())


def test_welcome_capabilities_are_checked():
    ok = codec.welcome("s1", last_rendered_seq=0, window=1, model="stub", capabilities=codec.capabilities())
    assert set(codec.decode(codec.encode(ok)).welcome.capabilities) == {"deflate-1", "deflate-stream-1", "ppm-stream-1", "quiet"}
    bad = pb.Envelope(welcome=pb.Welcome(session_id="s1", window=1, capabilities=["no spaces"]))
    with pytest.raises(ProtocolError):
        codec.decode(bad.SerializeToString())


LINES = [
    "Good morning, everyone, and thank you for joining the call today.",
    "Thank you all for joining; the call today is about the budget.",
    "Good morning again: the budget for the call today is on the first page.",
]


def test_packing_against_the_connections_history_makes_later_lines_smaller_and_round_trips():
    """Sender and receiver keep one History per connection; each utterance is packed against the
    dictionary and every earlier text, and both sides add each text in the same order."""
    sent, received = textpack.History(), textpack.History()
    streamed, alone = 0, 0
    for seq, line in enumerate(LINES, 1):
        frame = codec.encode(codec.utterance(seq, caption="A woman is talking", text=line, dictionary=1, history=sent))
        one = codec.encode(codec.utterance(seq, caption="A woman is talking", text=line, dictionary=1))
        decoded = codec.decode(frame, history=received).utterance
        assert (decoded.caption, decoded.text) == ("A woman is talking", line)
        assert sent.data == received.data
        if seq > 1:
            streamed, alone = streamed + len(frame), alone + len(one)
    assert streamed < 0.8 * alone  # later lines point back at the earlier ones


def test_streamed_text_needs_the_same_history():
    sent = textpack.History()
    codec.utterance(1, text=LINES[0], dictionary=1, history=sent)
    frame = codec.encode(codec.utterance(2, text=LINES[1], dictionary=1, history=sent))
    with pytest.raises(ProtocolError, match="needs a session"):
        codec.decode(frame)  # a stateless decode cannot unpack it
    with pytest.raises(ProtocolError):
        codec.decode(frame, history=textpack.History())  # a receiver that missed the first line
