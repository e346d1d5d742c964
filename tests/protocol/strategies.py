"""Hypothesis strategies for frames: valid envelopes of every kind, mutations of them, and noise.

Shared by the codec fuzz tests and the live-session fuzz tests.
"""

from __future__ import annotations

from hypothesis import strategies as st

from protocol import codec
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Outcome

_ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
ids = st.text(_ID_CHARS, min_size=1, max_size=64)
texts = st.text(max_size=120)  # any code points: control characters, blanks, emoji, ...
seqs = st.integers(min_value=0, max_value=2**64 - 1)


def _raw(envelope: pb.Envelope) -> bytes:
    return envelope.SerializeToString()  # no validation: the builders' checks are not the point


envelopes = st.one_of(
    st.builds(lambda s, c, v: pb.Envelope(hello=pb.Hello(sender_id=s, capabilities=c, protocol_version=v)),
              ids, st.lists(ids, max_size=3), st.sampled_from([1, 1, 1, 0, 2])),
    st.builds(lambda q, c, t, i: pb.Envelope(utterance=pb.Utterance(seq=q, caption=c, text=t, style_image_id=i)),
              seqs, texts, texts, st.one_of(st.just(""), ids)),
    st.builds(lambda q, o: pb.Envelope(ack=pb.Ack(seq=q, outcome=o)), seqs, st.sampled_from(list(Outcome.values()))),
    st.builds(lambda c, r: pb.Envelope(error=pb.Error(code=c, reason=r)), st.sampled_from(list(Code.values())), texts),
    st.builds(lambda i, n, k, t, d: pb.Envelope(style_image=pb.StyleImage(id=i, chunk_index=n, chunk_count=k,
                                                                           total_bytes=t, data=d)),
              ids, st.integers(0, 4), st.integers(0, 4), st.integers(0, 2**32 - 1), st.binary(max_size=64)),
    st.builds(lambda n: pb.Envelope(ping=pb.Ping(nonce=n)), st.integers(0, 2**64 - 1)),
    st.builds(lambda n: pb.Envelope(pong=pb.Pong(nonce=n)), st.integers(0, 2**64 - 1)),
    st.builds(lambda s: pb.Envelope(welcome=pb.Welcome(session_id=s, window=1)), ids),
    st.builds(lambda r: pb.Envelope(bye=pb.Bye(reason=r)), texts),
)
valid_frames = st.sampled_from([
    codec.encode(codec.hello("fuzz")),
    codec.encode(codec.utterance(1, caption="A woman is talking", text="Hello there.")),
    codec.encode(codec.utterance(2, text="Second.", style_image_id="anna")),
    codec.encode(codec.ping(7)),
    codec.encode(codec.ack(3, Outcome.RENDERED, media_seconds=1.0, render_ms=5)),
    codec.encode(codec.error(Code.QUEUE_FULL, "wait", 4)),
])


@st.composite
def mutated(draw, base=st.one_of(valid_frames, envelopes.map(_raw))) -> bytes:
    """A frame with a few byte-level mutations: flips, insertions, deletions, truncation, splices."""
    frame = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        position = draw(st.integers(0, max(0, len(frame))))
        if op == "flip" and frame:
            index = min(position, len(frame) - 1)
            frame[index] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and frame:
            frame[min(position, len(frame) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and frame:
            del frame[position : position + draw(st.integers(1, 4))]
        elif op == "truncate":
            del frame[position:]
        elif op == "duplicate":
            frame += frame[position:]
    return bytes(frame)


frames = st.one_of(
    st.binary(max_size=256),
    mutated(),
    envelopes.map(_raw),
    st.text(max_size=32),  # a text frame on the binary channel
    st.integers(48 * 1024 + 1, 60 * 1024).map(lambda n: b"\x1a" + bytes(n - 1)),  # over the frame limit
)

# For a live session: uploads at the size caps (4 MiB announced, 32 KiB chunks, or one byte over)
# and sequence numbers around the next one a session expects (and far beyond it).
_CHUNK = bytes(32 * 1024)
cap_uploads = st.builds(
    lambda i, k, over: pb.Envelope(style_image=pb.StyleImage(
        id=i, chunk_index=k, chunk_count=128, total_bytes=4 * 1024 * 1024 + over, data=_CHUNK)).SerializeToString(),
    st.sampled_from(["cap0", "cap1", "cap2", "cap3", "cap4", "cap5"]), st.integers(0, 3), st.sampled_from([0, 0, 0, 1]))
seq_jumps = st.builds(lambda q: codec.encode(codec.utterance(q, text="jump")),
                      st.one_of(st.integers(1, 40), st.integers(2**32, 2**64 - 1)))
live_frames = st.one_of(frames, cap_uploads, seq_jumps)

