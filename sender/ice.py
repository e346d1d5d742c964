"""ICE settings for the sender's peer connection."""

from __future__ import annotations

import logging

from aiortc import RTCConfiguration, RTCIceServer

from protocol.ice import IceServer

logger = logging.getLogger(__name__)


def use_loopback_candidates() -> None:
    """Offer only 127.0.0.1 as a host candidate.

    aioice leaves 127.0.0.1 out when it gathers host addresses, so two peers on one machine whose
    only interface is loopback (a CI sandbox, a network namespace) never connect. Both peers of a
    loopback call set this; it affects every connection made by this process afterwards.
    """
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    logger.debug("ICE host candidates restricted to 127.0.0.1")


def rtc_configuration(ice_servers: tuple[IceServer | str, ...] = ()) -> RTCConfiguration:
    """An RTCConfiguration with exactly these STUN/TURN servers (aiortc's default adds a public STUN
    server, which a closed network cannot reach and which a loopback call does not need). A plain
    string is a URL without credentials."""
    servers = []
    for server in ice_servers:
        if isinstance(server, str):
            server = IceServer((server,))
        servers.append(
            RTCIceServer(urls=list(server.urls), username=server.username, credential=server.credential)
        )
    return RTCConfiguration(iceServers=servers)
