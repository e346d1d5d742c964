"""Sender and receiver over a real WebRTC data channel on loopback, stub generator."""

from __future__ import annotations

import asyncio

from sender.client import Connected, Rendered


async def _events(sender, kind, count, timeout=30.0):
    seen = []
    async def collect():
        while len(seen) < count:
            event = await sender.events.get()
            if isinstance(event, kind):
                seen.append(event)
    await asyncio.wait_for(collect(), timeout)
    return seen


async def test_utterance_is_rendered(receiver, make_sender):
    sender = await make_sender(receiver)
    sender.say(caption="A woman is talking", text="hello")
    clip = await asyncio.wait_for(receiver.rendered.get(), 30)
    assert clip.seq == 1 and clip.request.caption == "A woman is talking"
    assert clip.clip.audio.size > 0 and clip.clip.video.shape[1:] == (64, 64, 3)
    assert clip.files and clip.files[0].exists()


async def test_every_utterance_rendered_once_in_order_and_acked(receiver, make_sender):
    sender = await make_sender(receiver)
    lines = [
        dict(caption="A woman is talking"),
        dict(text="speech only"),
        dict(caption="A man is talking", text="both of them"),
        dict(),
        dict(text="one more"),
    ] * 3
    for line in lines:
        sender.say(**line)
    assert await sender.drain(60)
    rendered = [receiver.rendered.get_nowait() for _ in range(receiver.rendered.qsize())]
    assert [r.seq for r in rendered] == list(range(1, len(lines) + 1))
    assert [r.request.text for r in rendered] == [line.get("text", "") for line in lines]
    acks = [e for e in _drain(sender.events) if isinstance(e, Rendered)]
    assert sorted(a.seq for a in acks) == list(range(1, len(lines) + 1))
    assert all(a.media_seconds > 0 and a.latency_s >= 0 for a in acks)
    assert len(sender.outbox) == 0


async def test_rtt_is_reported(receiver, make_sender):
    sender = await make_sender(receiver, ping_interval=0.2, dead_after=5.0)
    await _events(sender, Connected, 1)
    for _ in range(50):
        if sender.counters.rtt_ms is not None:
            break
        await asyncio.sleep(0.1)
    assert sender.counters.rtt_ms is not None and 0 <= sender.counters.rtt_ms < 1000


async def test_bitrate_report_counts_bytes(receiver, make_sender):
    sender = await make_sender(receiver)
    sender.say(text="count my bytes")
    assert await sender.drain(30)
    await sender.close()
    await asyncio.sleep(0.3)
    session_dirs = [p for p in receiver.out.iterdir() if p.is_dir() and p.name != "calls"]  # calls/: the faces kept per sender
    assert len(session_dirs) == 1
    import json

    for _ in range(50):
        if (session_dirs[0] / "bitrate.json").exists():
            break
        await asyncio.sleep(0.1)
    report = json.loads((session_dirs[0] / "bitrate.json").read_text())
    assert report["clips"] == 1 and report["media_seconds"] > 0
    assert report["payload_bytes_received"] == sender.counters.payload_bytes_sent
    received, setup = report["received"], report["setup_received"]
    assert received["dtls_bytes"] - setup["dtls_bytes"] > report["payload_bytes_received"]  # SCTP + DTLS framing
    # all in: every datagram (DTLS and STUN) with its 28-byte UDP/IPv4 header, the setup apart
    up = {k: received[k] - setup[k] for k in received}
    assert report["udp_bytes_in"] == up["dtls_bytes"] + up["stun_bytes"] + 28 * (up["dtls_packets"] + up["stun_packets"])
    assert received["stun_packets"] > 0 and report["setup_udp_bytes_in"] > 1000  # ICE checks, DTLS handshake
    assert report["call_seconds"] > 0 and report["bits_per_call_second"]["udp_in"] > 0
    assert (session_dirs[0] / "session.mp4").exists()
    assert (session_dirs[0] / "session.jsonl").exists()


def _drain(queue):
    items = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


async def test_sender_process_sends_without_importing_torch(receiver, tmp_path):
    """A real `textcall send` process: renders its script and never loads torch or numpy."""
    import sys

    from tests.integration.conftest import TOKEN

    script = tmp_path / "script.txt"
    script.write_text("A woman is talking | hello from a process |\n| |\n")
    code = (
        "import sys\n"
        "from sender.cli import main\n"
        f"rc = main(['send', '--receiver', {receiver.url!r}, '--token', {TOKEN!r}, '--loopback',\n"
        f"           '--script', {str(script)!r}, '--outbox', 'none', '--sender-id', 'proc'])\n"
        "heavy = [m for m in ('torch', 'numpy', 'cv2') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(rc or (3 if heavy else 0))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    text = out.decode()
    assert process.returncode == 0, text
    assert "HEAVY []" in text and "#2 rendered" in text
    assert receiver.rendered.qsize() == 2


async def test_wrong_token_is_fatal_for_the_sender(receiver):
    from sender.client import Sender, SenderConfig

    sender = Sender(SenderConfig(receiver_url=receiver.url, token="not-the-token", sender_id="x"))
    await sender.start()
    sender.say(text="never rendered")
    assert not await sender.drain(10)
    assert "401" in str(sender.fatal)
    await sender.close()


async def test_the_journal_times_each_utterance_from_text_to_first_and_last_frame(make_receiver, make_sender):
    import json

    from model.stub import StubGenerator

    receiver = await make_receiver(StubGenerator(pace=0.2))
    sender = await make_sender(receiver)
    sender.say(text="x" * 60)  # 3.6 s of stub speech: 5 chunks, 0.15 s of work each
    rendered = await asyncio.wait_for(receiver.rendered.get(), 30)
    assert 0 < rendered.first_frame_ms < rendered.render_ms
    journal = [json.loads(line) for line in (receiver.out / rendered.session_id / "session.jsonl").read_text().splitlines()]
    [first] = [e for e in journal if e["event"] == "first_frame"]
    [done] = [e for e in journal if e["event"] == "rendered"]
    assert first["seq"] == done["seq"] == 1 and done["chunks"] == 5
    assert first["first_frame_ms"] == done["first_frame_ms"] < done["last_frame_ms"] <= done["render_ms"]
    assert done["last_frame_ms"] - done["first_frame_ms"] >= 4 * 150 - 50  # the chunks came out over time
    assert abs(done["arrived"] - (done["t"] - done["render_ms"] / 1000)) < 1.0  # wall-clock arrival time
