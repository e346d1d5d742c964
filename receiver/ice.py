"""ICE settings of the receiver process."""

from __future__ import annotations

import logging

from aiortc import RTCConfiguration, RTCIceServer

from protocol.ice import IceServer

logger = logging.getLogger(__name__)


def use_loopback_candidates() -> None:
    """Answer with 127.0.0.1 as the only host candidate (aioice skips it when gathering), so a
    sender on the same machine connects even where loopback is the only interface. Process-wide."""
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    logger.debug("ICE host candidates restricted to 127.0.0.1")


def rtc_configuration(ice_servers: tuple[IceServer | str, ...] = ()) -> RTCConfiguration:
    """Exactly these STUN/TURN servers (with their TURN credentials); none means host candidates
    only (aiortc's own default would add a public STUN server). A plain string is a bare URL."""
    servers = []
    for server in ice_servers:
        if isinstance(server, str):
            server = IceServer((server,))
        servers.append(
            RTCIceServer(urls=list(server.urls), username=server.username, credential=server.credential)
        )
    return RTCConfiguration(iceServers=servers)
