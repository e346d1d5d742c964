"""The WebRTC settings both peers share: their ICE servers, and loopback-only host candidates.

The one module of ``protocol`` that touches aiortc (the sender and the receiver both run it; neither
may import the other). Stays free of torch and numpy like the rest of the package.
"""

from __future__ import annotations

import logging

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection

from protocol.ice import IceServer

logger = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


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
    transports = [pc.sctp.transport] if pc.sctp is not None else []
    transports += [t.sender.transport for t in pc.getTransceivers() if t.sender.transport is not None]
    restricted = 0
    for dtls in transports:
        # RTCIceGatherer keeps its aioice.Connection as `_connection` (aiortc 1.16, pinned in pyproject)
        connection = dtls.transport.iceGatherer._connection
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
