"""Where the wire bytes of a data-channel connection go, datagram by datagram.

aiortc counts DTLS-level bytes per transport but cannot say what they were. While a
:class:`WireTap` is open (a context manager; it patches aiortc and aioice classes of this process
and restores them on exit) every datagram an ICE transport of this process sends or receives is
recorded with its size at the DTLS level (what ``RTCDtlsTransport`` counts: DTLS records, SRTP) and
a label:

- the SCTP chunk it carried: ``utterance``, ``ack``, ``ping``, ``pong``, ... (a DATA chunk whose
  protobuf envelope is decoded), ``dcep`` (data channel open), ``sack``, ``sctp-setup`` (INIT,
  COOKIE), ``sctp-other``;
- ``dtls`` for handshake records and anything without an SCTP payload (SRTP when media flows).

STUN datagrams (ICE connectivity checks and RFC 7675 consent checks) travel below DTLS; they are
recorded apart, per ICE connection, with their times. ``TransportLog.udp`` adds it all up as the
network carries it: every datagram plus its 28 bytes of UDP/IPv4 header.
"""

from __future__ import annotations

import contextvars
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from protocol.rtc import UDP_IPV4_HEADER

logger = logging.getLogger(__name__)

_LABEL: contextvars.ContextVar[str | None] = contextvars.ContextVar("wiretap_label", default=None)
_SETUP_CHUNKS = {"InitChunk", "InitAckChunk", "CookieEchoChunk", "CookieAckChunk"}


@dataclass
class Datagram:
    t: float  # loop time
    direction: str  # "tx" | "rx"
    size: int
    label: str


def _total(datagrams: list[Datagram], direction: str, since: float, until: float, header: int) -> int:
    return sum(d.size + header for d in datagrams if d.direction == direction and since <= d.t < until)


@dataclass
class TransportLog:
    datagrams: list[Datagram] = field(default_factory=list)  # DTLS level
    stun: list[Datagram] = field(default_factory=list)

    def bytes(self, direction: str, since: float = float("-inf"), until: float = float("inf")) -> int:
        """DTLS-level bytes of the datagrams in ``[since, until)``."""
        return _total(self.datagrams, direction, since, until, 0)

    def stun_bytes(self, direction: str, since: float = float("-inf"), until: float = float("inf"), *,
                   headers: bool = True) -> int:
        """STUN datagrams in ``[since, until)``, with their UDP/IPv4 headers unless ``headers=False``."""
        return _total(self.stun, direction, since, until, UDP_IPV4_HEADER if headers else 0)

    def udp(self, direction: str, since: float = float("-inf"), until: float = float("inf")) -> int:
        """All in: DTLS and STUN datagrams in ``[since, until)``, each with its UDP/IPv4 header."""
        return _total(self.datagrams, direction, since, until, UDP_IPV4_HEADER) + self.stun_bytes(direction, since, until)


def classify_chunk(chunk) -> str:
    from google.protobuf.message import DecodeError

    from protocol import textcall_pb2 as pb

    name = type(chunk).__name__
    if name == "DataChunk":
        if chunk.protocol == 50:
            return "dcep"
        envelope = pb.Envelope()  # parsed, not decoded: text packed against a history stays packed
        try:
            envelope.ParseFromString(bytes(chunk.user_data))
        except DecodeError:
            return "data"
        return envelope.WhichOneof("body") or "data"
    if name == "SackChunk":
        return "sack"
    if name in _SETUP_CHUNKS:
        return "sctp-setup"
    return "sctp-other"


class WireTap:
    """Records every datagram of every ICE transport created while it is open."""

    def __init__(self) -> None:
        self.logs: dict[int, TransportLog] = {}  # id(RTCIceTransport) -> log
        self._ice_of_stun: dict[int, int] = {}  # id(StunProtocol) -> id(RTCIceTransport)
        self._pending_stun: dict[int, list[tuple[str, int]]] = defaultdict(list)
        self._saved: list[tuple[object, str, object]] = []
        self._ice_transports: list[object] = []

    # ------------------------------------------------------------------------------- results

    def log_of(self, pc) -> TransportLog:
        """The log of a peer connection's (bundled) transport."""
        ice = self._ice_of_pc(pc)
        self._attach_stun(ice)
        return self.logs.setdefault(id(ice), TransportLog())

    @staticmethod
    def _ice_of_pc(pc):
        if pc.sctp is not None:
            return pc.sctp.transport.transport
        for transceiver in pc.getTransceivers():
            return transceiver.sender.transport.transport
        raise ValueError("peer connection has no transport")

    def _attach_stun(self, ice) -> None:
        log = self.logs.setdefault(id(ice), TransportLog())
        for protocol in getattr(ice._connection, "_protocols", []):
            self._ice_of_stun[id(protocol)] = id(ice)
            for direction, size, t in self._pending_stun.pop(id(protocol), []):
                log.stun.append(Datagram(t, direction, size, "stun"))

    # ------------------------------------------------------------------------------ patching

    def __enter__(self) -> WireTap:
        import asyncio

        import aioice.ice
        from aiortc import rtcicetransport, rtcsctptransport

        tap = self
        ice_init = rtcicetransport.RTCIceTransport.__init__

        def init(ice, *args, **kwargs):
            ice_init(ice, *args, **kwargs)
            log = tap.logs.setdefault(id(ice), TransportLog())
            tap._ice_transports.append(ice)
            send, recv = ice._send, ice._recv

            async def tapped_send(data: bytes) -> None:
                log.datagrams.append(Datagram(asyncio.get_running_loop().time(), "tx", len(data), _LABEL.get() or "dtls"))
                await send(data)

            async def tapped_recv() -> bytes:
                data = await recv()
                log.datagrams.append(Datagram(asyncio.get_running_loop().time(), "rx", len(data), "dtls"))
                return data

            ice._send, ice._recv = tapped_send, tapped_recv

        sctp_cls = rtcsctptransport.RTCSctpTransport
        send_chunk, handle_data = sctp_cls._send_chunk, sctp_cls._handle_data

        async def tapped_send_chunk(sctp, chunk) -> None:
            token = _LABEL.set(classify_chunk(chunk))
            try:
                await send_chunk(sctp, chunk)
            finally:
                _LABEL.reset(token)

        async def tapped_handle_data(sctp, data: bytes) -> None:
            try:
                _, _, _, chunks = rtcsctptransport.parse_packet(data)
                label = classify_chunk(chunks[0]) if chunks else "sctp-other"
            except ValueError:
                label = "sctp-other"
            log = tap.logs.get(id(sctp.transport.transport))
            if log is not None:  # relabel the datagram that carried this packet (received just now)
                for d in reversed(log.datagrams):
                    if d.direction == "rx":
                        d.label = label
                        break
            await handle_data(sctp, data)

        stun_cls = aioice.ice.StunProtocol
        send_stun, received = stun_cls.send_stun, stun_cls.datagram_received

        def tapped_send_stun(protocol, message, addr) -> None:
            tap._stun(protocol, "tx", len(bytes(message)))
            send_stun(protocol, message, addr)

        def tapped_received(protocol, data, addr) -> None:
            if isinstance(data, bytes) and data and data[0] < 2:  # STUN: first two bits are zero
                tap._stun(protocol, "rx", len(data))
            received(protocol, data, addr)

        for owner, name, value in (
            (rtcicetransport.RTCIceTransport, "__init__", init),
            (sctp_cls, "_send_chunk", tapped_send_chunk),
            (sctp_cls, "_handle_data", tapped_handle_data),
            (stun_cls, "send_stun", tapped_send_stun),
            (stun_cls, "datagram_received", tapped_received),
        ):
            self._saved.append((owner, name, owner.__dict__[name]))
            setattr(owner, name, value)
        return self

    def _stun(self, protocol, direction: str, size: int) -> None:
        import asyncio

        t = asyncio.get_running_loop().time()
        ice_id = self._ice_of_stun.get(id(protocol))
        if ice_id is None:
            for ice in self._ice_transports:  # learn which connection owns this socket
                if protocol in getattr(ice._connection, "_protocols", []):
                    ice_id = self._ice_of_stun[id(protocol)] = id(ice)
                    break
        if ice_id is None:
            self._pending_stun[id(protocol)].append((direction, size, t))
        else:
            self.logs[ice_id].stun.append(Datagram(t, direction, size, "stun"))

    def __exit__(self, *exc) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()
