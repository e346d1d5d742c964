"""Counts what a session cost on the network, all in, per second of call.

Every datagram of the call counts: DTLS records (aiortc's transport counters: SCTP chunks inside, the
handshake too), STUN (ICE checks and RFC 7675 consent checks, ``protocol.rtc.StunCounter``) and the
28 bytes of UDP/IPv4 header under each. What went before the sender's Hello (ICE, DTLS handshake,
SCTP association, data channel open) is the setup, reported apart; rates are over the call's time
from Hello to its end. Seconds of generated media are their own column, never a divisor of traffic.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from protocol.rtc import UDP_IPV4_HEADER


@dataclass
class Link:
    """Cumulative counters of one direction of a connection."""

    dtls_bytes: int = 0
    dtls_packets: int = 0
    stun_bytes: int = 0
    stun_packets: int = 0

    @property
    def stun_udp_bytes(self) -> int:
        """The STUN datagrams as the network carried them (IPv4)."""
        return self.stun_bytes + UDP_IPV4_HEADER * self.stun_packets

    @property
    def udp_bytes(self) -> int:
        """All in: what the network carried (IPv4)."""
        return self.dtls_bytes + UDP_IPV4_HEADER * self.dtls_packets + self.stun_udp_bytes

    def minus(self, other: Link | None) -> Link:
        if other is None:
            return Link(**asdict(self))
        return Link(*(a - b for a, b in zip(asdict(self).values(), asdict(other).values())))


@dataclass
class BitrateMeter:
    """Per session: protobuf payload bytes and messages, and every datagram both ways (``Link``)."""

    session_id: str
    started: float = field(default_factory=time.monotonic)
    payload_bytes_received: int = 0
    payload_bytes_sent: int = 0
    messages_received: int = 0
    messages_sent: int = 0
    utterance_payload_bytes: int = 0
    media_seconds: float = 0.0
    clips: int = 0
    received: Link = field(default_factory=Link)  # sender -> receiver ("in", "up")
    sent: Link = field(default_factory=Link)
    # the counters when the sender's Hello arrived: the one-off setup, reported apart
    setup_received: Link | None = None
    setup_sent: Link | None = None
    call_started: float | None = None  # monotonic, at Hello
    call_ended: float | None = None

    # ------------------------------------------------------------------------------ counting
    def message_received(self, frame_bytes: int, *, utterance: bool = False) -> None:
        self.payload_bytes_received += frame_bytes
        self.messages_received += 1
        if utterance:
            self.utterance_payload_bytes += frame_bytes

    def message_sent(self, frame_bytes: int) -> None:
        self.payload_bytes_sent += frame_bytes
        self.messages_sent += 1

    def link(self, received: Link, sent: Link) -> None:
        """The connection's latest cumulative counters."""
        self.received, self.sent = received, sent

    def mark_setup(self) -> None:
        """The sender's Hello arrived: what came before is the setup."""
        if self.setup_received is None:
            self.setup_received, self.setup_sent = self.received, self.sent
            self.call_started = time.monotonic()

    def end(self) -> None:
        if self.call_ended is None:
            self.call_ended = time.monotonic()

    def rendered(self, seconds: float) -> None:
        self.media_seconds += seconds
        self.clips += 1

    # ------------------------------------------------------------------------------- reading
    @property
    def call_seconds(self) -> float:
        if self.call_started is None:
            return 0.0
        return (self.call_ended or time.monotonic()) - self.call_started

    def report(self) -> dict:
        seconds = self.call_seconds
        up, down = self.received.minus(self.setup_received), self.sent.minus(self.setup_sent)
        setup_up, setup_down = self.setup_received or Link(), self.setup_sent or Link()

        def bps(n: float) -> float | None:
            return round(8 * n / seconds, 1) if seconds > 0 else None

        return {
            **asdict(self),
            "call_seconds": round(seconds, 3),
            "media_seconds": round(self.media_seconds, 3),
            "udp_bytes_in": up.udp_bytes,
            "udp_bytes_out": down.udp_bytes,
            "setup_udp_bytes_in": setup_up.udp_bytes,
            "setup_udp_bytes_out": setup_down.udp_bytes,
            "stun_udp_bytes_in": up.stun_udp_bytes,  # of udp_bytes_in
            "stun_udp_bytes_out": down.stun_udp_bytes,
            "bits_per_call_second": {  # after setup, over the call's time (Hello to its end)
                "udp_in": bps(up.udp_bytes),
                "udp_out": bps(down.udp_bytes),
                "dtls_in": bps(up.dtls_bytes),
                "dtls_out": bps(down.dtls_bytes),
                "stun_in": bps(up.stun_udp_bytes),
                "stun_out": bps(down.stun_udp_bytes),
                "payload_in": bps(self.payload_bytes_received),
                "payload_out": bps(self.payload_bytes_sent),
                "utterance_payload": bps(self.utterance_payload_bytes),
            },
        }

    def summary(self) -> str:
        report = self.report()
        rates = report["bits_per_call_second"]
        return (
            f"session {self.session_id}: {report['call_seconds']:.0f} s of call, {self.clips} clips "
            f"({self.media_seconds:.1f} s of media); all-in UDP {rates['udp_in']} b/s in, {rates['udp_out']} b/s out "
            f"(payload {rates['payload_in']} b/s in; setup {report['setup_udp_bytes_in']} B in, apart)"
        )

    def write(self, path: Path) -> None:
        """``bitrate.json`` at ``path``. Reports are built from it outside the receiver
        (``textcall report SESSION_FOLDER``; the demo does it for its session)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.report(), indent=2) + "\n", encoding="utf-8")
