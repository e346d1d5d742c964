"""The WebRTC settings both peers share: their ICE servers, and loopback-only host candidates.

The one module of ``protocol`` that touches aiortc (the sender and the receiver both run it; neither
may import the other). Stays free of torch and numpy like the rest of the package.
"""

from __future__ import annotations

import asyncio
import logging
from typing import NamedTuple

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from protocol.ice import IceServer

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def ice_connections(pc: RTCPeerConnection, *, media: bool = True) -> list:
    """The aioice connections under ``pc``'s transports (its data channel's, and with ``media`` its
    transceivers'), deduplicated (bundled transports share one). aiortc keeps each as its
    RTCIceGatherer's ``_connection`` (aiortc 1.16, pinned in pyproject)."""
    transports = [pc.sctp.transport] if pc.sctp is not None else []
    if media:
        transports += [t.sender.transport for t in pc.getTransceivers() if t.sender.transport is not None]
    connections = []
    for dtls in transports:
        connection = dtls.transport.iceGatherer._connection
        if all(connection is not seen for seen in connections):
            connections.append(connection)
    return connections


class DtlsCounters(NamedTuple):
    bytes_sent: int
    packets_sent: int
    bytes_received: int
    packets_received: int


def dtls_counters(pc: RTCPeerConnection) -> DtlsCounters | None:
    """The DTLS datagrams and bytes (SCTP and DTLS framing included) of ``pc``'s data channel so far,
    from aiortc's transport stats (it has no public counter); None before the channel exists."""
    if pc.sctp is None:
        return None
    for stats in pc.sctp.transport._get_stats().values():
        return DtlsCounters(stats.bytesSent, stats.packetsSent, stats.bytesReceived, stats.packetsReceived)
    return None


def rtc_configuration(ice_servers: tuple[IceServer | str, ...] = ()) -> RTCConfiguration:
    """Exactly these STUN/TURN servers, with their TURN credentials. None means host candidates only:
    aiortc's own default adds a public STUN server, which a closed network cannot reach and a loopback
    call does not need. A plain string is a URL without credentials."""
    servers = []
    for server in ice_servers:
        if isinstance(server, str):
            server = IceServer((server,))
        servers.append(RTCIceServer(urls=list(server.urls), username=server.username, credential=server.credential))
    return RTCConfiguration(iceServers=servers)


def loopback_only(pc: RTCPeerConnection) -> int:
    """Gather 127.0.0.1 as this peer connection's only host candidate, for a call between two peers on
    one machine whose only interface may be loopback (a CI sandbox, a network namespace): aioice leaves
    127.0.0.1 out when it gathers. Only ``pc`` is affected, not other connections of the process.

    Call it once ``pc`` has its transport (after ``createDataChannel`` for an offer, after
    ``setRemoteDescription`` for an answer) and before ``setLocalDescription``, which gathers.
    Returns how many ICE connections it restricted (0: called too early, nothing to restrict).
    """
    restricted = 0
    for connection in ice_connections(pc):
        if getattr(connection, "textcall_loopback", False):
            continue
        gather = connection.get_component_candidates

        async def loopback_candidates(component: int, addresses: list[str], timeout: int = 5, _gather=gather):
            return await _gather(component=component, addresses=[LOOPBACK], timeout=timeout)

        connection.get_component_candidates = loopback_candidates
        connection.textcall_loopback = True
        restricted += 1
    logger.debug("ICE host candidates of %d connection(s) restricted to %s", restricted, LOOPBACK)
    return restricted


# ------------------------------------------------------------------------ all-in byte counting
UDP_IPV4_HEADER = 28  # bytes every datagram costs below its payload: IPv4 (20) + UDP (8)


class StunCounter:
    """STUN datagrams (ICE connectivity checks, RFC 7675 consent checks, their responses) of one peer
    connection, both ways: counts and bytes (the STUN message; add ``UDP_IPV4_HEADER`` per datagram
    for what the network carries). DTLS datagrams are counted by aiortc's transport stats.

    ``attach(pc)`` once the connection has gathered (after ``setLocalDescription``); it wraps the
    connection's own STUN sockets, nothing process-wide."""

    def __init__(self) -> None:
        self.sent_bytes = self.sent_packets = self.received_bytes = self.received_packets = 0
        self._seen: set[int] = set()

    def attach(self, pc: RTCPeerConnection) -> int:
        """Count the STUN traffic of ``pc``'s ICE sockets from now on; returns how many sockets."""
        attached = 0
        for connection in ice_connections(pc):
            for protocol in getattr(connection, "_protocols", []):
                if id(protocol) in self._seen:
                    continue
                self._seen.add(id(protocol))
                self._wrap(protocol)
                attached += 1
        return attached

    def _wrap(self, protocol) -> None:
        send, receive = protocol.send_stun, protocol.datagram_received

        def send_stun(message, addr) -> None:
            self.sent_bytes += len(bytes(message))
            self.sent_packets += 1
            send(message, addr)

        def datagram_received(data, addr) -> None:
            if isinstance(data, bytes) and data and data[0] < 2:  # STUN: the first two bits are zero
                self.received_bytes += len(data)
                self.received_packets += 1
            receive(data, addr)

        protocol.send_stun, protocol.datagram_received = send_stun, datagram_received


# ------------------------------------------------------------------------------ consent checks
# RFC 7675 (ICE consent freshness): consent to send expires 30 s after the last answered check;
# checks are sent at a randomised interval (0.8-1.2 x a base period; 5 s is the usual base, which
# aioice uses), each with a new transaction id. Between two textcall peers both ends run textcall,
# so each checks every SPARSE_CONSENT_INTERVAL (16-24 s), and when a check goes unanswered it sends
# a fresh one (a new transaction, not a retransmission) every CONSENT_RECHECK seconds until one is
# answered or the 30 s since the last answer have passed: 4 to 9 more tries inside the lifetime
# (aioice's 5 s checks give 5). A check and a response, ~90 and ~70 bytes + 28 of UDP/IP each,
# every ~20 s instead of every 5 s (ice4j, Jitsi's ICE stack, checks every 15 s and retries within
# the lifetime too).
CONSENT_LIFETIME = 30.0
SPARSE_CONSENT_INTERVAL = 20.0
CONSENT_RECHECK = 1.0


def sparse_consent(pc: RTCPeerConnection, *, interval: float = SPARSE_CONSENT_INTERVAL,
                   recheck: float = CONSENT_RECHECK, lifetime: float = CONSENT_LIFETIME) -> int:
    """Check consent on ``pc`` every ``interval`` seconds (randomised x0.8-1.2) instead of aioice's 5,
    with a fresh check every ``recheck`` seconds after one goes unanswered, closing the connection
    once ``lifetime`` (RFC 7675: 30 s) passes without an answer. Only for a peer known to run textcall (its own
    checks are as sparse); a browser keeps the default. Call before the connection completes
    (``setLocalDescription``); returns how many ICE connections it changed."""
    import random

    from aioice import stun

    if interval <= 0 or recheck <= 0 or interval * 1.2 + 2 * recheck > lifetime:
        raise ValueError(f"consent must be refreshed, with room for a second try, within its {lifetime:g} s "
                         "lifetime (RFC 7675)")
    changed = 0
    for connection in ice_connections(pc, media=False):
        if getattr(connection, "textcall_consent", None) is not None:
            continue

        async def query_consent(connection=connection) -> None:
            # aioice's Connection.query_consent with a sparser interval, and fresh checks after a miss
            loop = asyncio.get_running_loop()
            answered_at = loop.time()  # the connectivity check that nominated the pair
            wait = interval * (0.8 + 0.4 * random.random())
            while True:
                await asyncio.sleep(wait)
                missed = 0
                for pair in connection._nominated.values():
                    request = connection.build_request(pair, nominate=False)
                    try:
                        await pair.protocol.request(request, pair.remote_addr,
                                                    integrity_key=connection.remote_password.encode("utf8"),
                                                    retransmissions=0)
                    except stun.TransactionError:
                        missed += 1
                now = loop.time()
                if not missed:
                    answered_at, wait = now, interval * (0.8 + 0.4 * random.random())
                elif now - answered_at + recheck < lifetime:
                    wait = recheck  # a fresh check (new transaction id) soon
                else:
                    logger.info("ICE consent expired (no answer for %.0f s)", now - answered_at)
                    connection._query_consent_task = None
                    await connection.close()
                    return

        connection.query_consent = query_consent
        connection.textcall_consent = interval
        changed += 1
    return changed


# ------------------------------------------------------------------------------ DTLS record size
# aiortc offers ECDHE-ECDSA-AES128-GCM-SHA256 first: every DTLS 1.2 record then carries an 8-byte
# explicit nonce and a 16-byte tag (37 bytes with the 13-byte header). ChaCha20-Poly1305 (RFC 7905)
# has an implicit nonce: 29 bytes a record, 8 fewer on every datagram of the call (and a 256-bit key
# where AES128-GCM has 128). Offering it first changes what two textcall peers agree on; the rest of aiortc's
# list stays, so a browser still negotiates whatever it prefers.
DTLS_CIPHERS = (b"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:"
                b"ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA")


def prefer_chacha20(pc: RTCPeerConnection) -> int:
    """Make ``pc``'s DTLS offer ChaCha20-Poly1305 first (8 bytes fewer a datagram). Call before the
    DTLS handshake starts (before ``setLocalDescription`` or right after creating ``pc``); returns
    how many certificates it changed. aiortc 1.16 keeps them as ``pc._RTCPeerConnection__certificates``
    and builds each DTLS context with ``RTCCertificate._create_ssl_context``."""
    changed = 0
    for certificate in getattr(pc, "_RTCPeerConnection__certificates", []):
        if getattr(certificate, "textcall_ciphers", False):
            continue
        build = certificate._create_ssl_context

        def create_ssl_context(srtp_profiles, _build=build):
            context = _build(srtp_profiles)
            context.set_cipher_list(DTLS_CIPHERS)
            return context

        certificate._create_ssl_context = create_ssl_context
        certificate.textcall_ciphers = True
        changed += 1
    return changed
