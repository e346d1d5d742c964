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
        sparse_consent(RTCPeerConnection(), interval=25)  # 30 s at worst: no room for a second try
    with pytest.raises(ValueError, match="30 s"):
        sparse_consent(RTCPeerConnection(), interval=20, recheck=0)


class _FakeConnection:
    """The parts of an aioice Connection the consent loop uses; ``answers`` says, check by check,
    whether the peer answers (then it always does)."""

    def __init__(self, answers: list[bool]) -> None:
        from types import SimpleNamespace

        self.answers = list(answers)
        self.checks: list[float] = []
        self.closed_at: float | None = None
        self.remote_password = "pw"
        self._nominated = {1: SimpleNamespace(protocol=self, remote_addr=("127.0.0.1", 9))}

    def build_request(self, pair, nominate=False):
        return object()

    async def request(self, request, addr, integrity_key=None, retransmissions=None):
        from aioice import stun

        self.checks.append(asyncio.get_running_loop().time())
        if not (self.answers.pop(0) if self.answers else True):
            raise stun.TransactionTimeout()

    async def close(self):
        self.closed_at = asyncio.get_running_loop().time()


def _fake_pc(connection):
    from types import SimpleNamespace

    gatherer = SimpleNamespace(_connection=connection)
    return SimpleNamespace(sctp=SimpleNamespace(transport=SimpleNamespace(transport=SimpleNamespace(iceGatherer=gatherer))))


async def test_an_unanswered_consent_check_is_followed_by_fresh_ones_until_the_lifetime_ends():
    """RFC 7675: consent lasts 30 s from the last answer. A missed check is followed by a fresh
    check every `recheck` seconds; an answer returns to the sparse interval, and only a whole
    lifetime without one closes the connection (scaled down: lifetime 0.6 s, interval 0.2 s)."""
    from protocol.rtc import sparse_consent

    lossy = _FakeConnection([False, False, True])  # two checks lost, the third answered
    assert sparse_consent(_fake_pc(lossy), interval=0.2, recheck=0.05, lifetime=0.6) == 1
    task = asyncio.ensure_future(lossy.query_consent())
    await asyncio.sleep(0.6)
    gaps = [b - a for a, b in zip(lossy.checks, lossy.checks[1:])]
    assert len(lossy.checks) >= 4 and lossy.closed_at is None
    assert gaps[0] < 0.1 and gaps[1] < 0.1  # fresh checks right after each miss
    assert gaps[2] >= 0.15  # answered: back to the sparse interval (0.16-0.24 s)
    task.cancel()

    dead = _FakeConnection([False] * 100)
    sparse_consent(_fake_pc(dead), interval=0.2, recheck=0.05, lifetime=0.6)
    start = asyncio.get_running_loop().time()
    await asyncio.wait_for(dead.query_consent(), 3)
    assert dead.closed_at is not None and 0.55 <= dead.closed_at - start <= 1.0
    assert len(dead.checks) >= 4  # the first sparse check and several fresh ones before giving up


@pytest.mark.parametrize("both", [True, False])
async def test_two_textcall_peers_agree_on_chacha20_and_a_standard_peer_still_connects(both):
    """prefer_chacha20 on both ends: the DTLS records use ChaCha20-Poly1305 (29 bytes of framing
    instead of AES-GCM's 37). On one end only (the other a standard aiortc peer), they still connect."""
    from protocol.rtc import prefer_chacha20

    offerer, answerer = RTCPeerConnection(), RTCPeerConnection()
    try:
        assert prefer_chacha20(offerer) == 1 and prefer_chacha20(offerer) == 0
        if both:
            prefer_chacha20(answerer)
        channel = offerer.createDataChannel("textcall")
        loopback_only(offerer)
        opened = asyncio.Event()
        channel.on("open", opened.set)
        await offerer.setLocalDescription(await offerer.createOffer())
        await answerer.setRemoteDescription(offerer.localDescription)
        loopback_only(answerer)
        await answerer.setLocalDescription(await answerer.createAnswer())
        await offerer.setRemoteDescription(answerer.localDescription)
        await asyncio.wait_for(opened.wait(), 10)
        cipher = offerer.sctp.transport._ssl.get_cipher_name()
        assert cipher == answerer.sctp.transport._ssl.get_cipher_name()
        if both:
            assert cipher == "ECDHE-ECDSA-CHACHA20-POLY1305"
    finally:
        await offerer.close()
        await answerer.close()
