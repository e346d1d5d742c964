from __future__ import annotations

from sender.outbox import Outbox


def test_outbox_survives_restart(tmp_path):
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)
    for text in ("one", "two", "three"):
        box.add(text=text, sent_unix_ms=1)
    box.done(1)
    box.close()
    again = Outbox(path)
    assert [p.text for p in again.pending()] == ["two", "three"]
    assert again.next_seq == 4
    again.close()


def test_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)
    box.add(text="kept", sent_unix_ms=1)
    box.close()
    with path.open("a") as f:
        f.write('{"add": {"seq": 2, "te')
    again = Outbox(path)
    assert [p.text for p in again.pending()] == ["kept"]
    again.close()


def test_skip_to_keeps_sent_ones_so_the_receiver_says_how_they_ended(tmp_path):
    """#1 was sent and is settled at the receiver, but its ack (or its Error) was lost with the old
    connection: it is sent again, as #1, and the receiver answers it as it ended."""
    box = Outbox(None)
    box.add(text="a", sent_unix_ms=1)
    box.add(text="b", sent_unix_ms=1)
    box.mark_sent(1)
    assert box.skip_to(1) == []
    assert [p.seq for p in box.pending()] == [1, 2] and box.next_seq == 3


def test_a_receiver_that_lost_its_render_log_gets_numbers_from_its_own_next(tmp_path):
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)
    for _ in range(49):  # numbers an earlier receiver run settled
        box.done(box.add(text="old", sent_unix_ms=1).seq)
    for text in ("a", "b", "c"):
        box.add(text=text, sent_unix_ms=1)
    box.mark_sent(50)
    assert box.skip_to(0) == []  # the receiver starts from #1 again: it refuses #50 as a gap
    assert [(p.seq, p.text) for p in box.pending()] == [(1, "a"), (2, "b"), (3, "c")] and box.next_seq == 4
    box.close()
    again = Outbox(path)  # and a restart reads the same
    assert [(p.seq, p.text) for p in again.pending()] == [(1, "a"), (2, "b"), (3, "c")] and again.next_seq == 4
    again.close()


def test_unsent_utterances_colliding_with_an_old_run_are_renumbered(tmp_path):
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)  # a sender whose earlier journal was lost: receiver has 1..10 of it
    for text in ("a", "b", "c"):
        box.add(text=text, sent_unix_ms=1)
    assert box.skip_to(10) == []
    assert [(p.seq, p.text) for p in box.pending()] == [(11, "a"), (12, "b"), (13, "c")]
    assert box.next_seq == 14
    box.close()
    again = Outbox(path)
    assert [(p.seq, p.text) for p in again.pending()] == [(11, "a"), (12, "b"), (13, "c")]
    again.close()


def test_sent_marks_survive_restart(tmp_path):
    path = tmp_path / "outbox.jsonl"
    box = Outbox(path)
    box.add(text="a", sent_unix_ms=1)
    box.mark_sent(1)
    box.close()
    again = Outbox(path)
    assert again.skip_to(1) == [] and [p.seq for p in again.pending()] == [1]  # sent again: the receiver answers


def test_the_outbox_textcall_send_writes_is_the_owners_only(tmp_path):
    """The outbox holds the speech text: `textcall send` writes it 0600 whatever the umask it was started
    with (here no receiver answers; the line stays unsent, and kept)."""
    import os
    import subprocess

    from tests.integration.processes import child_env, textcall_command

    script = tmp_path / "script.txt"
    script.write_text("hello there\n")
    outbox = tmp_path / "outbox"
    old = os.umask(0o022)
    try:
        subprocess.run(textcall_command("send", "--receiver", "http://127.0.0.1:9", "--sender-id", "a", "--script", str(script),
                                        "--outbox", str(outbox), "--timeout", "2"),
                       env=child_env(TEXTCALL_TOKEN="t" * 24), capture_output=True, timeout=120)
    finally:
        os.umask(old)
    assert outbox.exists() and "hello there" in outbox.read_text()
    assert outbox.stat().st_mode & 0o077 == 0
