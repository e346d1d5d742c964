"""The receiver's calls: one per sender id, kept across that sender's reconnects.

A call (``model/call.py``) holds the person the sender's utterances show. The receiver opens one
per sender id the first time it renders for it and keeps it while the sender reconnects; with
recording on, the call's face is also kept on disk in ``OUT/calls/<sender id>/`` (``face.png``,
``face.json``) and read back after a receiver restart. A generator without calls (a test fake that
only has ``generate``) gets a stateless stand-in.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path

from typing import Iterator

from model import Chunk, Clip, Generator, Request, split_clip

logger = logging.getLogger(__name__)

CALLS_FOLDER = "calls"


class _Stateless:
    """A call for a generator that has none: each utterance is ``generator.generate``."""

    face = None

    def __init__(self, generator: Generator, call_id: str) -> None:
        self.generator = generator
        self.call_id = call_id

    def say(self, request: Request) -> Clip:
        return self.generator.generate(request)

    def stream(self, request: Request) -> Iterator[Chunk]:
        """The whole clip as one chunk: such a generator renders nothing sooner."""
        clip = self.say(request)
        yield from split_clip(clip, len(clip.video))


class Calls:
    """sender id -> its call; at most ``limit`` in memory (the oldest unused go; their faces stay on disk)."""

    def __init__(self, generator: Generator, folder: Path | None, limit: int = 256) -> None:
        self.generator = generator
        self.folder = folder
        self.limit = limit
        self._calls: OrderedDict[str, object] = OrderedDict()

    def store(self, sender_id: str) -> Path | None:
        return self.folder / CALLS_FOLDER / sender_id if self.folder is not None else None

    def get(self, sender_id: str):
        call = self._calls.get(sender_id)
        if call is None:
            opener = getattr(self.generator, "open_call", None)
            call = opener(sender_id, store=self.store(sender_id)) if opener is not None else _Stateless(self.generator, sender_id)
            self._calls[sender_id] = call
            while len(self._calls) > self.limit:
                self._calls.popitem(last=False)
        self._calls.move_to_end(sender_id)
        return call
