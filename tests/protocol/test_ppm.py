"""The PPM text coder (protocol/ppm.py) and its place in the protocol (``textpack.PPM``)."""

from __future__ import annotations

import random

import pytest

from protocol import codec, ppm, textpack
from protocol import textcall_pb2 as pb
from protocol.codec import ProtocolError

CAPTION = "A woman is talking"
LINES = [
    "Good morning, everyone, and thank you for joining the call today.",
    "I want to give you a short update on the project before we talk about next steps.",
    "Could you send me the slides before the meeting on Thursday?",
    "The weather has been lovely here, we went for a long walk.",
    "Let me check my calendar and call you back this afternoon.",
    "Grüße aus Köln, señor: 3 × 4 = 12 ✓ and a tab\there.",
    "x",
]


def _state(model: ppm.Model):
    return [{key: dict(table) for key, table in tables.items()} for tables in model.tables], model.context


def _pair() -> tuple[ppm.Model, ppm.Model]:
    one = ppm.Model()
    one.prime(textpack.dictionary(1) + b" ")
    return one, one.copy()


def test_messages_round_trip_and_coding_leaves_the_model_as_it_was():
    sender, receiver = _pair()
    rng = random.Random(7)
    messages = [line.encode() for line in LINES] + [b""]
    messages += [bytes(rng.randrange(256) for _ in range(rng.randint(1, 200))).replace(b"\x1e", b"") for _ in range(20)]
    for message in messages:
        before = _state(sender)
        code = sender.encode(message)
        assert _state(sender) == before  # coding learns nothing
        assert receiver.decode(code, 10_000) == message
        sender.learn(message)
        receiver.learn(message)
    assert sender.tables == receiver.tables and sender.context == receiver.context


def test_the_end_marker_cannot_be_sent_and_decoding_is_capped():
    sender, receiver = _pair()
    with pytest.raises(ValueError):
        sender.encode(b"a\x1eb")
    code = sender.encode(b"a" * 500)
    with pytest.raises(ppm.DecodeError, match="more than 100"):
        receiver.decode(code, 100)
    assert receiver.decode(code, 500) == b"a" * 500


def test_garbage_is_refused_or_decoded_without_harm_and_leaves_the_model_as_it_was():
    _, receiver = _pair()
    before = _state(receiver)
    rng = random.Random(3)
    for _ in range(200):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        try:
            out = receiver.decode(data, 2_000)
        except ppm.DecodeError:
            continue
        assert len(out) <= 2_000 and 0x1E not in out
    assert _state(receiver) == before


def test_ppm_packs_a_calls_texts_smaller_than_deflate_and_both_sides_stay_alike():
    """The sender's History(ppm=True) codes with PPM; the receiver decodes by the wire number alone.
    Over a call's lines PPM spends fewer bytes than DEFLATE against the same history."""
    coded, streamed, received = textpack.History(ppm=True), textpack.History(), textpack.History()
    ppm_bytes = deflate_bytes = 0
    for seq, line in enumerate(LINES[:5], 1):
        envelope = codec.utterance(seq, caption=CAPTION, text=line, dictionary=1, history=coded, timestamp=False)
        assert envelope.utterance.dictionary == textpack.PPM + 1
        other = codec.utterance(seq, caption=CAPTION, text=line, dictionary=1, history=streamed, timestamp=False)
        assert other.utterance.dictionary == textpack.STREAM + 1
        ppm_bytes += len(envelope.utterance.packed)
        deflate_bytes += len(other.utterance.packed)
        decoded = codec.decode(codec.encode(envelope), history=received).utterance
        assert (decoded.caption, decoded.text) == (CAPTION, line)
        assert coded.data == received.data
    assert coded.model(1).tables == received.model(1).tables
    assert ppm_bytes < 0.9 * deflate_bytes  # 0.85 on these five lines


def test_a_text_sent_plain_is_learnt_on_both_sides_even_before_the_first_coded_message():
    """A text too short to gain from packing goes plain; a receiver that builds its model only at
    the first coded message learns it from the history it kept, and decodes what follows."""
    sent, received = textpack.History(ppm=True), textpack.History()
    short = codec.utterance(1, text="x", dictionary=1, history=sent, timestamp=False)
    assert short.utterance.text == "x" and not short.utterance.packed
    codec.decode(codec.encode(short), history=received)
    for seq, line in enumerate(LINES[:3], 2):
        frame = codec.encode(codec.utterance(seq, caption=CAPTION, text=line, dictionary=1, history=sent))
        assert codec.decode(frame, history=received).utterance.text == line
    assert sent.model(1).tables == received.model(1).tables


def test_a_refused_coded_message_changes_neither_history():
    sent, received = textpack.History(ppm=True), textpack.History()
    good = codec.encode(codec.utterance(1, caption=CAPTION, text=LINES[0], dictionary=1, history=sent))
    codec.decode(good, history=received)
    corrupt = pb.Envelope(utterance=pb.Utterance(seq=2, packed=textpack._tag(received.data) + b"\xff" * 30,
                                                  dictionary=textpack.PPM + 1))
    before = received.data, _state(received.model(1))
    with pytest.raises(ProtocolError):
        codec.decode(corrupt.SerializeToString(), history=received)
    assert (received.data, _state(received.model(1))) == before
    frame = codec.encode(codec.utterance(2, caption=CAPTION, text=LINES[1], dictionary=1, history=sent))
    assert codec.decode(frame, history=received).utterance.text == LINES[1]  # the call goes on


def test_coded_text_needs_the_same_history_and_a_known_dictionary():
    sent = textpack.History(ppm=True)
    codec.utterance(1, text=LINES[0], dictionary=1, history=sent)
    frame = codec.encode(codec.utterance(2, text=LINES[1], dictionary=1, history=sent))
    with pytest.raises(ProtocolError, match="needs a session"):
        codec.decode(frame)
    with pytest.raises(ProtocolError, match="another history"):
        codec.decode(frame, history=textpack.History())  # a receiver that missed the first line
    unknown = pb.Envelope(utterance=pb.Utterance(seq=1, packed=b"\x00\x00\x01", dictionary=textpack.PPM + 9))
    with pytest.raises(ProtocolError, match="unknown text dictionary"):
        codec.decode(unknown.SerializeToString(), history=textpack.History())


def test_a_plain_text_with_the_end_marker_is_refused_not_a_crash():
    """Plain texts are added to the history before they are validated; one holding U+001E (the PPM
    end marker, a control character no valid text has) must end as the protocol's refusal."""
    received = textpack.History()
    received.model(1)  # a model exists, as after a first coded message
    bad = pb.Envelope(utterance=pb.Utterance(seq=1, text="hello\x1eworld")).SerializeToString()
    with pytest.raises(ProtocolError, match="control characters"):
        codec.decode(bad, history=received)
