"""Joining sentences into fewer utterances, for links where every message costs.

Each data-channel message costs about 60 bytes of SCTP and DTLS framing, and the receiver's ack of it
another 57 in the sender's direction (the SCTP SACK): at 150 words per minute, one message per
sentence costs more than the text itself. A :class:`Batcher` holds speech text for up to
``seconds`` and sends it as one utterance; a new caption or style image, text that would exceed the
receiver's limit, or :meth:`flush` sends what is held at once. Lines without speech text (caption
only, style only, unconditional) are never merged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from protocol import codec
from protocol.codec import DEFAULT_LIMITS, Limits
from sender.client import Sender

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchConfig:
    seconds: float = 15.0
    limits: Limits = DEFAULT_LIMITS

    def __post_init__(self) -> None:
        if not 0 < self.seconds <= 600:
            raise ValueError(f"batch seconds must be in (0, 600], got {self.seconds}")


class Batcher:
    def __init__(self, sender: Sender, config: BatchConfig = BatchConfig()) -> None:
        self.sender = sender
        self.config = config
        self._key: tuple[str, str] | None = None  # (caption, style id) of the held text
        self._texts: list[str] = []
        self._timer: asyncio.TimerHandle | None = None
        self._added: list[float] = []  # loop time each held line came in
        self.utterances = 0  # utterances handed to the sender so far
        self.waits: list[float] = []  # seconds each line sent so far waited here (0: sent at once)

    @property
    def held(self) -> int:
        """Sentences waiting to be sent."""
        return len(self._texts)

    def add(self, *, caption: str = "", text: str = "", style_image_id: str = "") -> None:
        """Hold one line; raises ProtocolError (from the sender) for a line it would refuse."""
        text = text.strip()
        codec.validate(codec.utterance(1, caption=caption, text=text, style_image_id=style_image_id))
        if not text:
            self.flush()
            self._say(caption, "", style_image_id)
            self.waits.append(0.0)
            return
        key = (caption, style_image_id)
        joined = len(" ".join(self._texts)) + 1 + len(text)
        if self._texts and (key != self._key or joined > self.config.limits.max_text_chars):
            self.flush()
        if not self._texts:
            self._key = key
            self._timer = asyncio.get_running_loop().call_later(self.config.seconds, self.flush)
        self._texts.append(text)
        self._added.append(asyncio.get_running_loop().time())

    def flush(self) -> None:
        """Send what is held now (no-op when nothing is)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._texts or self._key is None:
            return
        caption, style = self._key
        text = " ".join(self._texts)
        now = asyncio.get_running_loop().time()
        self.waits += [now - added for added in self._added]
        self._texts, self._key, self._added = [], None, []
        self._say(caption, text, style)

    def _say(self, caption: str, text: str, style_image_id: str) -> None:
        self.sender.say(caption=caption, text=text, style_image_id=style_image_id)
        self.utterances += 1
        logger.debug("batcher: utterance %d (%d characters)", self.utterances, len(text))

    def close(self) -> None:
        self.flush()
