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


def test_skip_to_forgets_rendered_and_never_reuses_numbers(tmp_path):
    box = Outbox(None)
    box.add(text="a", sent_unix_ms=1)
    box.add(text="b", sent_unix_ms=1)
    finished = box.skip_to(1)
    assert [p.seq for p in finished] == [1]
    assert [p.seq for p in box.pending()] == [2]
    box.skip_to(10)
    assert box.next_seq == 11 and len(box) == 0
