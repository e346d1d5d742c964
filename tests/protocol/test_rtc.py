"""protocol.rtc: the WebRTC settings both peers share, loopback candidates per connection."""

from __future__ import annotations

import asyncio
import re

import aioice.ice
import pytest
from aiortc import RTCPeerConnection

from protocol.ice import IceServer
from protocol.rtc import LOOPBACK, loopback_only, rtc_configuration


def _host_addresses(sdp: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", sdp)}


def test_rtc_configuration_has_exactly_the_given_servers():
    assert rtc_configuration().iceServers == []  # not aiortc's public STUN default
    servers = rtc_configuration((IceServer(("turn:t.example.org:3478",), "u", "p"), "stun:s.example.org"))
    assert [(s.urls, s.username, s.credential) for s in servers.iceServers] == [
        (["turn:t.example.org:3478"], "u", "p"), (["stun:s.example.org"], None, None)]


async def test_loopback_only_restricts_one_connection_and_they_connect():
    before = aioice.ice.get_host_addresses
    offerer, answerer, other = RTCPeerConnection(), RTCPeerConnection(), RTCPeerConnection()
    try:
        assert loopback_only(offerer) == 0  # no transport yet: nothing to restrict
        channel = offerer.createDataChannel("textcall")
        assert loopback_only(offerer) == 1
        assert loopback_only(offerer) == 0  # once per connection
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await offerer.setLocalDescription(await offerer.createOffer())
        assert _host_addresses(offerer.localDescription.sdp) == {LOOPBACK}

        await answerer.setRemoteDescription(offerer.localDescription)
        assert loopback_only(answerer) == 1
        await answerer.setLocalDescription(await answerer.createAnswer())
        assert _host_addresses(answerer.localDescription.sdp) == {LOOPBACK}
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(opened.wait(), 10)

        # the rest of the process is untouched: aioice's gatherer, and a connection left alone
        assert aioice.ice.get_host_addresses is before
        other.createDataChannel("plain")
        await other.setLocalDescription(await other.createOffer())
        assert LOOPBACK not in _host_addresses(other.localDescription.sdp)  # aioice's own rule
    finally:
        for pc in (offerer, answerer, other):
            await pc.close()


async def test_sparse_consent_and_stun_counting_on_one_connection():
    """``sparse_consent`` replaces this connection's consent loop (aioice's module default stays),
    and ``StunCounter`` counts the connection's STUN datagrams both ways."""
    import aioice.ice

    from protocol.rtc import SPARSE_CONSENT_INTERVAL, StunCounter, sparse_consent

    default_interval = aioice.ice.CONSENT_INTERVAL
    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        channel = offerer.createDataChannel("textcall")
        loopback_only(offerer)
        assert sparse_consent(offerer) == 1 and sparse_consent(offerer) == 0
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await offerer.setLocalDescription(await offerer.createOffer())
        counter = StunCounter()
        assert counter.attach(offerer) >= 1
        await answerer.setRemoteDescription(offerer.localDescription)
        loopback_only(answerer)
        sparse_consent(answerer)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(opened.wait(), 10)
        connection = offerer.sctp.transport.transport.iceGatherer._connection
        assert connection.textcall_consent == SPARSE_CONSENT_INTERVAL
        assert aioice.ice.CONSENT_INTERVAL == default_interval  # nothing process-wide
        # the connectivity checks went both ways through the counted sockets
        assert counter.sent_packets > 0 and counter.received_packets > 0
        assert counter.sent_bytes >= 20 * counter.sent_packets  # a STUN header is 20 bytes
    finally:
        await offerer.close()
        await answerer.close()


def test_consent_must_fit_its_lifetime():
    from protocol.rtc import sparse_consent

    with pytest.raises(ValueError, match="30 s"):
        sparse_consent(RTCPeerConnection(), interval=25, failures=2)
