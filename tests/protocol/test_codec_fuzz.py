"""Fuzzing the codec: random frames, valid envelopes of every kind and byte-level mutations of them.

Whatever arrives, ``decode`` either returns an envelope that passes validation again (and survives a
round trip) or raises ``ProtocolError`` with a reason and a real ``Error.Code``; never anything else.
The default run tries a few hundred frames per test, ``-m slow`` at least 10,000.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from protocol import codec
from protocol.codec import Code, ProtocolError
from tests.protocol.strategies import frames, mutated

KNOWN_CODES = set(Code.values()) - {Code.CODE_UNSPECIFIED}


def check_frame(frame: bytes | str) -> str:
    """Decode one frame and check the contract; returns 'ok' or the error code's name."""
    try:
        envelope = codec.decode(frame)
    except ProtocolError as exc:
        assert exc.reason and isinstance(exc.reason, str)
        assert exc.code in KNOWN_CODES, exc.code
        return codec.code_name(exc.code)
    kind = envelope.WhichOneof("body")
    assert kind is not None
    codec.validate(envelope)
    assert codec.decode(envelope.SerializeToString()).WhichOneof("body") == kind
    return "ok"


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))


@FAST
@given(frames)
def test_any_frame_is_an_envelope_or_a_protocol_error(frame):
    check_frame(frame)


@FAST
@given(mutated())
def test_mutated_valid_frames_are_an_envelope_or_a_protocol_error(frame):
    check_frame(frame)


@pytest.mark.slow
@SLOW
@given(frames)
def test_any_frame_10k(frame):
    check_frame(frame)


@pytest.mark.slow
@SLOW
@given(mutated())
def test_mutated_valid_frames_10k(frame):
    check_frame(frame)
