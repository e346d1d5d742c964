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


def test_skip_to_forgets_sent_and_rendered(tmp_path):
    box = Outbox(None)
    box.add(text="a", sent_unix_ms=1)
    box.add(text="b", sent_unix_ms=1)
    box.mark_sent(1)
    finished = box.skip_to(1)
    assert [p.seq for p in finished] == [1]
    assert [p.seq for p in box.pending()] == [2]


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
    assert [p.seq for p in again.skip_to(1)] == [1] and len(again) == 0


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
