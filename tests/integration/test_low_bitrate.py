"""The low-bitrate link end to end: compressed text, quiet heartbeat, two real peers on loopback."""

from __future__ import annotations

import asyncio

from sender.client import Connected, Queued

TEXT = "Good morning, everyone, and thank you for joining the call today."


def _events(sender) -> list:
    items = []
    while not sender.events.empty():
        items.append(sender.events.get_nowait())
    return items


async def _connected(sender) -> None:
    while not isinstance(await asyncio.wait_for(sender.events.get(), 10), Connected):
        pass


async def test_compressed_quiet_sender_is_rendered_with_its_text(receiver, make_sender):
    sender = await make_sender(receiver, sender_id="quiet", compress=True, quiet=True)
    sender.say(caption="A woman is talking", text=TEXT)
    assert await sender.drain(30)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert (rendered.request.caption, rendered.request.text) == ("A woman is talking", TEXT)
    session = next(iter(receiver.sessions().values()))
    assert session.quiet and session.dead_after >= 60
    assert not any(isinstance(e, Queued) for e in _events(sender))  # no QUEUED acks when quiet
    assert sender._conn is not None and sender._conn.dictionary == 1 and sender._conn.quiet


async def test_compression_shrinks_the_utterance_payload(receiver, make_sender):
    plain = await make_sender(receiver, sender_id="plain")
    packed = await make_sender(receiver, sender_id="packed", compress=True)
    for sender in (plain, packed):
        sender.say(caption="A woman is talking", text=TEXT)
        assert await sender.drain(30)
    sessions = {s.sender_id: s for s in receiver.sessions().values()}
    plain_bytes = sessions["plain"].meter.utterance_payload_bytes
    packed_bytes = sessions["packed"].meter.utterance_payload_bytes
    assert 0 < packed_bytes < plain_bytes - 20


async def test_quiet_sender_does_not_ping_while_talking(receiver, make_sender):
    sender = await make_sender(receiver, sender_id="silent", quiet=True, quiet_ping_interval=30.0,
                               quiet_dead_after=40.0)
    await _connected(sender)
    before = sender.counters.messages_sent
    await asyncio.sleep(2.5)  # a default sender pings every 2 s
    assert sender.counters.messages_sent == before
    loud = await make_sender(receiver, sender_id="loud")
    await _connected(loud)
    start = loud.counters.messages_sent
    await asyncio.sleep(2.5)
    assert loud.counters.messages_sent > start


async def test_a_closed_session_leaves_its_meter_and_a_report_is_built_from_it(receiver, make_sender):
    """The receiver writes bitrate.json only; the text-link report is built from it outside the receiver
    (``receiver.report``, as the demo and ``textcall report`` do), from the session's own counts."""
    import json

    from receiver.report.session_report import write_session_report

    sender = await make_sender(receiver, sender_id="reported", compress=True, quiet=True)
    sender.say(caption="A woman is talking", text=TEXT)
    assert await sender.drain(30)
    await sender.close()
    folder = next(p for p in receiver.out.iterdir() if p.is_dir() and p.name != "calls")  # calls/: faces per sender
    for _ in range(50):
        if (folder / "bitrate.json").exists():
            break
        await asyncio.sleep(0.1)
    meter = json.loads((folder / "bitrate.json").read_text())
    assert not (folder / "report.json").exists()  # the receiver builds no reports
    write_session_report(folder, meter)
    report = json.loads((folder / "report.json").read_text())
    (item,) = report["text_link"]
    assert item["payload_up_bytes"] == meter["payload_bytes_received"] == sender.counters.payload_bytes_sent
    assert item["setup_up_bytes"] == meter["setup_received"]["dtls_bytes"] > 0  # handshake split off
    assert item["wire_up_bytes"] + item["setup_up_bytes"] == meter["received"]["dtls_bytes"]
    assert item["udp_up_bytes"] == meter["udp_bytes_in"] and item["udp_up_bps"] > 0  # all in, its own counts
    assert item["call_seconds"] == meter["call_seconds"] > 0
    assert (folder / "report.md").exists() and (folder / "report.html").exists()
    assert not (folder / "bitrate.png").exists()  # the light report draws no chart


async def test_a_quiet_senders_acks_are_held_merged_and_asked_for(receiver, make_sender):
    """Conversational/economy: the receiver holds RENDERED acks and sends one for a run of seqs
    (Ack.first_seq); the sender settles every seq of it, and its drain() pings for them at once."""
    from sender.client import Rendered as Settled

    sender = await make_sender(receiver, sender_id="merged", compress=True, quiet=True)
    for k in range(3):
        sender.say(caption="A woman is talking", text=f"{TEXT} Part {k}.")
    session = None
    for _ in range(100):  # the stub renders at once; the acks wait
        session = next((s for s in receiver.sessions().values() if s.sender_id == "merged"), None)
        if session is not None and session._held_acks and session._held_acks[1] == 3:
            break
        await asyncio.sleep(0.05)
    assert session._held_acks[:2] == [1, 3] and session.meter.messages_sent == 1  # the Welcome only
    assert await sender.drain(5)  # well before the 30 s hold: the drain's ping asked for them
    settled = []
    while not sender.events.empty():
        event = sender.events.get_nowait()
        if isinstance(event, Settled):
            settled.append(event.seq)
    assert settled == [1, 2, 3] and session.meter.messages_sent == 3  # Welcome, one ack for 1-3, a pong


async def test_conversational_and_economy_presets(tmp_path):
    from sender.app import ECONOMY_BATCH_S, SendOptions
    from sender.cli import build_parser

    def options(*flags):
        return SendOptions.from_args(build_parser().parse_args(
            ["send", "--token", "t" * 16, "--outbox", "none", "--text", "hi", *flags]))

    conversational, economy, legacy = options("--conversational"), options("--economy"), options("--low-bitrate")
    assert conversational.config.compress and conversational.config.quiet and conversational.batch_seconds == 0
    assert economy.config.compress and economy.config.quiet and economy.batch_seconds == ECONOMY_BATCH_S == 8
    assert legacy == economy
    assert not options().config.quiet and options().batch_seconds == 0


async def test_sparse_consent_only_with_a_textcall_peer(receiver, make_sender, raw_peer):
    """A `textcall send` offer says it runs textcall: both ends check consent every ~15 s. A standard
    WebRTC peer (no such field in its offer, like a browser) keeps ~5 s checks, and is served."""
    from protocol import codec
    from protocol.rtc import SPARSE_CONSENT_INTERVAL

    def consent(session):
        return getattr(session.pc.sctp.transport.transport.iceGatherer._connection, "textcall_consent", None)

    sender = await make_sender(receiver, sender_id="peer-textcall")
    raw_peer = await raw_peer(receiver)
    raw_peer.send(codec.encode(codec.hello("peer-standard")))
    assert (await raw_peer.next("welcome")).welcome.session_id
    assert await sender.drain(10)
    by_sender = {}
    for _ in range(50):
        by_sender = {s.sender_id: s for s in receiver.sessions().values()}
        if {"peer-textcall", "peer-standard"} <= set(by_sender):
            break
        await asyncio.sleep(0.05)
    assert consent(by_sender["peer-textcall"]) == SPARSE_CONSENT_INTERVAL
    assert consent(by_sender["peer-standard"]) is None  # aioice's own checks
