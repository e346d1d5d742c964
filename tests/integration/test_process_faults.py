"""Faults with real processes killed by SIGKILL: nothing is lost, nothing is rendered twice, order holds.

- the receiver (``textcall receive --model stub``) is killed mid-stream and started again on the same
  port and folder; the sender notices by its heartbeats, reconnects with backoff and resends;
- the sender (``textcall send --script``) is killed with utterances unacked and started again with the
  same outbox; it resumes the script where the earlier run left it.

The evidence is what the receiver wrote: its session journals (``rendered`` events) and clips.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from sender.client import Sender, SenderConfig
from sender.outbox import Outbox
from tests.integration.conftest import TOKEN
from tests.integration.processes import (
    Process,
    free_port,
    rendered_events,
    start_receiver,
    textcall_command,
)
from tests.integration.test_faults import SlowStub

LINES = [f"Sentence number {i}, long enough to make a clip of a few seconds." for i in range(1, 25)]


async def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _kill_receiver_mid_stream(tmp_path, sender_id: str, lines: list[str], *receiver_args: str, caption: str = "",
                                    first: int, first_wait: float, settle: float = 0.0, wait: float, timing: dict):
    """Start ``textcall receive`` (with ``receiver_args``), send ``lines`` from a sender with an outbox,
    kill the receiver (SIGKILL) once ``first`` clips are rendered (and ``settle`` s more), start it
    again on the same port and folder, and wait for the sender to drain. Returns the sender's rendered
    journal events and how many were rendered before the kill."""
    out, port = tmp_path / "out", free_port()
    receiver = start_receiver(out, port, TOKEN, *receiver_args)
    sender = Sender(SenderConfig(receiver_url=f"http://127.0.0.1:{port}", token=TOKEN, sender_id=sender_id,
                                 outbox_path=tmp_path / "outbox.jsonl", **timing))
    again = None
    try:
        await sender.start()
        for line in lines:
            sender.say(caption=caption, text=line)
        await _wait_for(lambda: len(rendered_events(out)) >= first, first_wait, "the first clips")
        await asyncio.sleep(settle)
        receiver.kill()
        before = len(rendered_events(out))
        assert before < len(lines), "the kill came too late to be mid-stream"
        assert len(sender.outbox) > 0
        again = start_receiver(out, port, TOKEN, *receiver_args, log=tmp_path / "receiver-again.log")
        assert await sender.drain(wait), f"not drained; receiver log:\n{again.output()}"
    finally:
        await sender.close()
        receiver.stop()
        if again is not None:
            again.stop()
    return [e for e in rendered_events(out) if e.sender_id == sender_id], before


async def test_receiver_process_killed_mid_stream_and_restarted(tmp_path):
    events, before = await _kill_receiver_mid_stream(tmp_path, "survivor", LINES, first=4, first_wait=60, wait=90,
                                                     timing=dict(ping_interval=0.3, dead_after=1.5, max_backoff=0.5))
    assert [e.seq for e in events] == list(range(1, len(LINES) + 1))
    assert [e.text for e in events] == LINES
    assert len({e.session for e in events}) >= 2  # rendered by both lives of the receiver
    assert 0 < before < len(events)


async def test_sender_process_killed_with_unacked_utterances_and_restarted(make_receiver, tmp_path):
    receiver = await make_receiver(generator=SlowStub(0.25))
    script = tmp_path / "lines.txt"
    script.write_text("\n".join(LINES[:12]) + "\n")
    outbox = tmp_path / "outbox.jsonl"
    argv = textcall_command(
        "send", "--receiver", receiver.url, "--token", TOKEN, "--sender-id", "phoenix",
        "--script", str(script), "--outbox", str(outbox), "--loopback", "--timeout", "90",
    )  # fmt: skip
    first = Process(argv, tmp_path / "sender-1.log")
    try:
        await _wait_for(lambda: receiver.rendered.qsize() >= 3 or not first.alive(), 60, "the first clips")
        first.kill()
    finally:
        first.kill()
    box = Outbox(outbox)
    unacked = len(box)
    box.close()
    assert unacked > 0, f"nothing was left unacked:\n{first.output()}"

    second = Process(argv, tmp_path / "sender-2.log")
    try:
        loop = asyncio.get_running_loop()
        code = await loop.run_in_executor(None, second.wait, 90)
    finally:
        second.kill()
    assert code == 0, second.output()
    assert "resuming the script" in second.output()
    rendered = []
    while not receiver.rendered.empty():
        rendered.append(receiver.rendered.get_nowait())
    assert [r.seq for r in rendered] == list(range(1, 13)), second.output()
    assert [r.request.text for r in rendered] == LINES[:12]
    journal = [e for e in rendered_events(receiver.out) if e.sender_id == "phoenix"]
    assert [e.seq for e in journal] == list(range(1, 13))


async def test_a_failing_utterance_gets_an_error_and_the_rest_render(make_receiver, make_sender):
    from sender.client import Refused
    from tests.integration.test_bad_input import FailsOnce

    receiver = await make_receiver(generator=FailsOnce())
    sender = await make_sender(receiver, sender_id="unlucky")
    texts = ["one", "two", "boom", "four", "five"]
    for text in texts:
        sender.say(text=text)
    assert await sender.drain(30)
    refused = []
    while not sender.events.empty():
        event = sender.events.get_nowait()
        if isinstance(event, Refused):
            refused.append(event)
    assert [(r.seq, r.code) for r in refused] == [(3, "GENERATION_FAILED")]
    assert "out of memory" in refused[0].reason
    rendered = []
    while not receiver.rendered.empty():
        rendered.append(receiver.rendered.get_nowait())
    assert [(r.seq, r.request.text) for r in rendered] == [(1, "one"), (2, "two"), (4, "four"), (5, "five")]
    assert [e.seq for e in rendered_events(receiver.out)] == [1, 2, 4, 5]  # the journal agrees


@pytest.mark.slow
async def test_receiver_with_the_default_model_killed_mid_render(tmp_path):
    """The kill test once with the real generator (minutes on a CPU): a receiver killed while it renders
    with the default model loses nothing, renders nothing twice, and leaves no corrupt file; the killed
    session's whole-call recording is rebuilt at the restart."""
    from receiver.recorder import read_mp4

    lines = ["Hello there.", "How are you today?", "I am fine, thank you.", "See you soon."]
    out = tmp_path / "out"
    events, _ = await _kill_receiver_mid_stream(tmp_path, "heavy", lines, "--model", "default", caption="A woman is talking",
                                                first=1, first_wait=600, settle=2.0, wait=900,  # 2 s into the second utterance's render
                                                timing=dict(ping_interval=0.5, dead_after=3.0, max_backoff=1.0))
    assert [e.seq for e in events] == [1, 2, 3, 4] and [e.text for e in events] == lines
    assert not list(out.rglob("*.part"))
    for clip in out.glob("*/[0-9][0-9][0-9][0-9].mp4"):
        assert read_mp4(clip)[0].shape[0] > 0, clip
    sessions = {e.session for e in events}
    assert len(sessions) == 2
    for session in sessions:  # the killed one rebuilt from its clips at the restart, the other closed
        video, audio, _, _ = read_mp4(out / session / "session.mp4")
        assert video.shape[0] > 0 and audio.size > 0
