"""One face per call through the receiver: kept across a sender's reconnect and a receiver restart."""

from __future__ import annotations

import asyncio
import json

import numpy as np

from model.stub import StubGenerator


def _top(video: np.ndarray) -> np.ndarray:
    """The stub's face without its mouth (which moves with the speech): the top third of frame 0."""
    return video[0, : video.shape[1] // 3]


async def _say(make_sender, receiver, sender_id: str, **utterance):
    sender = await make_sender(receiver, sender_id=sender_id)
    sender.say(**utterance)
    assert await sender.drain(30)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 10)
    await sender.close()
    return rendered


async def test_a_senders_face_survives_reconnects_and_a_receiver_restart(make_receiver, make_sender) -> None:
    receiver = await make_receiver(generator=StubGenerator())
    first = await _say(make_sender, receiver, "ann", caption="A woman is talking", text="hello there")
    again = await _say(make_sender, receiver, "ann", text="and hello again, after a reconnect")
    other = await _say(make_sender, receiver, "ben", text="someone else entirely")
    assert np.array_equal(_top(first.clip.video), _top(again.clip.video))
    assert not np.array_equal(_top(first.clip.video), _top(other.clip.video))
    assert first.clip.info["face"]["number"] == again.clip.info["face"]["number"] == 1
    store = receiver.out / "calls" / "ann"
    assert (store / "face.png").is_file() and json.loads((store / "face.json").read_text())["gender"] == "female"
    journal = [json.loads(line) for line in (receiver.out / first.session_id / "session.jsonl").read_text().splitlines()]
    faces = [e for e in journal if e["event"] == "face"]
    assert len(faces) == 1 and faces[0]["path"] == str(store / "face.png")
    await receiver.runner.cleanup()

    restarted = await make_receiver(generator=StubGenerator())  # same out folder: a receiver restart
    later = await _say(make_sender, restarted, "ann", text="after the restart")
    assert np.array_equal(_top(first.clip.video), _top(later.clip.video))


async def test_a_style_image_without_a_face_is_refused_and_the_face_stays(make_receiver, make_sender, tmp_path) -> None:
    import cv2

    receiver = await make_receiver(generator=StubGenerator())
    before = await _say(make_sender, receiver, "cat", caption="A man is talking", text="first")
    sender = await make_sender(receiver, sender_id="cat")
    ok, png = cv2.imencode(".png", np.full((120, 120, 3), 90, np.uint8))  # a grey square: no face in it
    sender.upload_style_image("grey", png.tobytes())
    sender.say(text="with a bad style image", style_image_id="grey")
    sender.say(text="and on")
    assert await sender.drain(30)
    after = await asyncio.wait_for(receiver.rendered.get(), 10)
    assert after.request.text == "and on"
    assert np.array_equal(_top(before.clip.video), _top(after.clip.video))
    journal = [json.loads(line) for line in (receiver.out / after.session_id / "session.jsonl").read_text().splitlines()]
    errors = [e for e in journal if e["event"] == "error"]
    assert len(errors) == 1 and "no face" in errors[0]["reason"] and "grey" in errors[0]["reason"]


async def test_a_caption_with_unknown_words_renders_and_the_journal_notes_them(make_receiver, make_sender) -> None:
    receiver = await make_receiver(generator=StubGenerator())
    rendered = await _say(make_sender, receiver, "dan", caption="A woman riding a purple dragon", text="hello")
    assert rendered.clip.info["caption"]["read"] == {"gender": "female"}
    journal = [json.loads(line) for line in (receiver.out / rendered.session_id / "session.jsonl").read_text().splitlines()]
    notes = [e for e in journal if e["event"] == "caption"]
    assert len(notes) == 1 and notes[0]["unknown"] == ["riding", "purple", "dragon"] and notes[0]["seq"] == rendered.seq
    assert not [e for e in journal if e["event"] == "error"]
