"""Batching sentences into fewer utterances, and saying a script at a person's pace."""

from __future__ import annotations

import asyncio

import pytest

from protocol.codec import Limits, ProtocolError
from sender.batcher import BatchConfig, Batcher
from sender.speaker import speak, speaking_seconds


class FakeSender:
    def __init__(self) -> None:
        self.said: list[tuple[str, str, str]] = []

    def say(self, *, caption: str = "", text: str = "", style_image_id: str = "") -> None:
        self.said.append((caption, text, style_image_id))


async def test_lines_with_the_same_caption_are_joined_until_flushed():
    sender = FakeSender()
    batcher = Batcher(sender, BatchConfig(seconds=60))
    batcher.add(caption="A woman is talking", text="Hello there.")
    batcher.add(caption="A woman is talking", text="How are you?")
    assert sender.said == [] and batcher.held == 2
    batcher.add(caption="A man is talking", text="Fine.")  # a new caption sends what was held
    assert sender.said == [("A woman is talking", "Hello there. How are you?", "")]
    batcher.flush()
    assert sender.said[-1] == ("A man is talking", "Fine.", "")
    assert batcher.held == 0 and batcher.utterances == 2


async def test_held_text_leaves_after_the_window():
    sender = FakeSender()
    batcher = Batcher(sender, BatchConfig(seconds=0.05))
    batcher.add(text="one")
    batcher.add(text="two")
    await asyncio.sleep(0.15)
    assert sender.said == [("", "one two", "")]


async def test_lines_without_text_are_never_merged():
    sender = FakeSender()
    batcher = Batcher(sender, BatchConfig(seconds=60))
    batcher.add(text="held")
    batcher.add(caption="A woman is talking")
    assert sender.said == [("", "held", ""), ("A woman is talking", "", "")]


async def test_the_text_limit_is_respected():
    sender = FakeSender()
    batcher = Batcher(sender, BatchConfig(seconds=60, limits=Limits(max_text_chars=20)))
    for word in ("aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"):
        batcher.add(text=word)
    batcher.flush()
    assert [text for _, text, _ in sender.said] == ["aaaaaaaaaa", "bbbbbbbbbb", "cccccccccc"]


async def test_a_bad_line_is_refused_at_once():
    batcher = Batcher(FakeSender(), BatchConfig(seconds=60))
    with pytest.raises(ProtocolError):
        batcher.add(text="bell\x07")
    assert batcher.held == 0


def test_batch_window_is_validated():
    with pytest.raises(ValueError):
        BatchConfig(seconds=0)


async def test_speak_paces_lines_by_words(monkeypatch):
    """Each line waits until a speaker at ``wpm`` would have finished it (no wall-clock in the assert:
    the waits it asks for are recorded, not slept)."""
    import sender.speaker as speaker

    fake = FakeSender()
    waits: list[tuple[float, int]] = []

    async def record(seconds: float) -> None:
        waits.append((seconds, len(fake.said)))

    monkeypatch.setattr(speaker.asyncio, "sleep", record)  # for this test only
    lines = [("", "one two three", ""), ("", "four five six", "")]
    spoken = await speak(fake, lines, wpm=3600)  # 60 words a second: 50 ms a line
    assert spoken == pytest.approx(0.1)
    # before line k is said, it waits until 50 ms x (k + 1) after the start, less the time already gone
    assert [said for _, said in waits] == [0, 1] and len(fake.said) == 2
    assert waits[0][0] == pytest.approx(0.05, abs=0.01) and waits[1][0] == pytest.approx(0.1, abs=0.01)
    assert speaking_seconds("", 150) == pytest.approx(0.4)  # at least one word
