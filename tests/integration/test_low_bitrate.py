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
    assert item["setup_up_bytes"] == meter["setup_wire_bytes_received"] > 0  # handshake split off
    assert item["wire_up_bytes"] + item["setup_up_bytes"] == meter["wire_bytes_received"]
    assert (folder / "report.md").exists() and (folder / "report.html").exists()
    assert not (folder / "bitrate.png").exists()  # the light report draws no chart
