"""The browser viewer in a real headless Chromium: a live call plays while it is still rendering.

A real sender talks to the receiver over WebRTC; the stub generator is paced like a generator a bit
faster than real time (each 0.75 s chunk takes 0.6 s). What the page did is read from its own log
(``window.textcallLog``, from the page's media events) over the DevTools protocol.
"""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from model.stub import CHUNK_FRAMES, StubGenerator
from tests.integration.browser import Browser
from tests.integration.conftest import TOKEN

pytestmark = pytest.mark.skipif(Browser.find() is None, reason="needs Chromium (Debian: apt install chromium; CI installs it)")

TEXT = "x" * 80  # 4.8 s of stub speech: 77 frames, 7 chunks
PACE = 0.8


@pytest.fixture
async def browser(tmp_path):
    browser = await Browser.launch(tmp_path / "profile", "--autoplay-policy=no-user-gesture-required")
    yield browser
    await browser.close()


async def _log(page) -> list[dict]:
    return await page.evaluate("window.textcallLog || []")


async def _until(page, predicate, timeout: float = 30.0, what: str = "") -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        log = await _log(page)
        if predicate(log):
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"page never showed {what}; its log: {log[-30:]}")
        await asyncio.sleep(0.05)


def _first(log, kind: str, **match) -> dict | None:
    return next((e for e in log if e["type"] == kind and all(e.get(k) == v for k, v in match.items())), None)


def _playing_after(log, wall_ms: float) -> dict | None:
    """The first moment the video's time moved on, after ``wall_ms``."""
    return next((e for e in log if e["type"] == "timeupdate" and e["currentTime"] > 0 and e["wall"] >= wall_ms), None)


async def test_the_viewer_plays_an_utterance_while_it_renders(make_receiver, make_sender, browser):
    receiver = await make_receiver(StubGenerator(pace=PACE), viewer=True)
    page = await browser.open(f"{receiver.url}/view?token={TOKEN}")
    await _until(page, lambda log: _first(log, "event", event="hello"), what="the receiver's hello")
    sender = await make_sender(receiver, "alice")

    sent = time.time() * 1000
    sender.say(caption="A woman is talking", text=TEXT)
    rendered = await asyncio.wait_for(receiver.rendered.get(), 60)
    complete = time.time() * 1000  # the whole clip exists (recorded) only now
    chunks = math.ceil(len(rendered.clip.video) / CHUNK_FRAMES)
    assert chunks >= 5

    log = await _until(page, lambda log: _playing_after(log, sent), what="its video playing")
    first_move = _playing_after(log, sent)
    print(f"first frame moved {first_move['wall'] - sent:.0f} ms after the text, complete at {complete - sent:.0f} ms")
    assert first_move["wall"] < complete - 1000, (first_move, complete - sent)  # seconds before the last chunk was made
    appended = [e for e in log if e["type"] == "appended"]
    assert appended and appended[0]["wall"] < complete - 2000  # the first chunk was in the page early

    duration = rendered.clip.seconds
    log = await _until(page, lambda log: sum(e["type"] == "appended" for e in log) >= chunks, what="every chunk")
    assert not [e for e in log if e["type"] in ("live-error", "segment-missing", "error")]
    state = await _until_played(page, duration)
    # generation is faster than real time here (0.6 s per 0.75 s chunk): no stall once playing
    log = await _log(page)
    started = _first(log, "playing")["wall"]
    stalls = [e for e in log if e["type"] == "waiting" and e["wall"] > started and e["currentTime"] < duration - 0.1]
    assert not stalls, stalls
    assert len(state["buffered"]) == 1 and state["buffered"][0][1] == pytest.approx(duration, abs=0.05)  # no gap
    assert state["frames"] >= len(rendered.clip.video) - 2 and state["audio"] > 0  # pictures and sound decoded
    assert math.isclose(state["buffered"][0][0], 0.0, abs_tol=0.05)

    # its caption and text are shown; the speech is audible after one click on Unmute (a real mouse event)
    card = await page.evaluate("[...document.querySelectorAll('#main .card p')].map(p => p.textContent)")
    assert "A woman is talking" in card and f"\u201c{TEXT}\u201d" in card
    assert await page.evaluate("document.querySelector('#main video').muted") is True
    await page.click("#unmute")
    assert await page.evaluate("document.querySelector('#main video').muted") is False

    # the next utterance plays on the same timeline, and a page opened while it renders catches up
    sender.say(text=TEXT)
    await _until(page, lambda log: _first(log, "event", event="chunk", seq=2), what="the second utterance")
    late = await browser.open(f"{receiver.url}/view?token={TOKEN}")
    second = await asyncio.wait_for(receiver.rendered.get(), 60)
    complete2 = time.time() * 1000
    assert second.seq == 2
    late_log = await _until(late, lambda log: _playing_after(log, 0), what="the late page playing")
    assert _first(late_log, "live-start") is not None
    assert _playing_after(late_log, 0)["wall"] < complete2, "the late page only played after the utterance was complete"
    state = await _until_played(page, 2 * duration)
    assert len(state["buffered"]) == 1  # one continuous stream across utterances
    assert await page.evaluate("(() => { const v = document.querySelector('#main video'); return !v.muted; })()")


async def _until_played(page, seconds: float, timeout: float = 30.0) -> dict:
    expression = """(() => { const v = document.querySelector('#main video');
        const b = []; for (let i = 0; i < v.buffered.length; i++) b.push([v.buffered.start(i), v.buffered.end(i)]);
        return {t: v.currentTime, buffered: b, frames: v.getVideoPlaybackQuality().totalVideoFrames,
                audio: v.webkitAudioDecodedByteCount || 0}; })()"""
    deadline = time.monotonic() + timeout
    while True:
        state = await page.evaluate(expression)
        if state["t"] >= seconds - 0.15:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"the video stopped at {state}")
        await asyncio.sleep(0.1)
