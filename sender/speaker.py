"""Saying a script at a person's pace, for measurements and rehearsals (``send --pace WPM``).

A line is handed to the sender when its last word would have been said: each line takes
``words / wpm`` minutes after the one before it, as if a person read the script aloud and every
sentence were sent once spoken. With a :class:`~sender.batcher.Batcher` lines are joined first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sender.batcher import Batcher
from sender.client import Sender

logger = logging.getLogger(__name__)


def speaking_seconds(text: str, wpm: float) -> float:
    """Seconds a person needs to say ``text`` at ``wpm`` words per minute (at least one word)."""
    return max(1, len(text.split())) * 60.0 / wpm


async def speak(
    sender: Sender,
    lines: Sequence[tuple[str, str, str]],
    *,
    wpm: float,
    batcher: Batcher | None = None,
    on_error: Callable[[Exception], None] | None = None,
) -> float:
    """Hand ``(caption, text, style id)`` lines over at ``wpm``; returns the speaking seconds."""
    if wpm <= 0:
        raise ValueError(f"words per minute must be positive, got {wpm}")
    loop = asyncio.get_running_loop()
    start = loop.time()
    spoken = 0.0
    for caption, text, style in lines:
        spoken += speaking_seconds(text, wpm)
        await asyncio.sleep(max(0.0, start + spoken - loop.time()))
        try:
            if batcher is not None:
                batcher.add(caption=caption, text=text, style_image_id=style)
            else:
                sender.say(caption=caption, text=text, style_image_id=style)
        except Exception as exc:  # ProtocolError / FatalError: report and go on
            if on_error is None:
                raise
            on_error(exc)
    if batcher is not None:
        batcher.flush()
    logger.debug("spoke %d line(s) in %.1f s", len(lines), spoken)
    return spoken
