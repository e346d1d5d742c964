"""Which utterances each sender has had rendered, kept on disk so resends after a reconnect or a
receiver restart are recognised as duplicates."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)


class RenderLog:
    """sender id -> highest sequence number rendered. Sessions render in order, so one number per
    sender is enough."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last: dict[str, int] = {}
        self._claimed: set[tuple[str, int]] = set()  # being written right now (by one session)
        if path is not None and path.exists():
            try:
                self._last = {str(k): int(v) for k, v in json.loads(path.read_text()).items()}
            except (ValueError, TypeError, AttributeError):
                logger.warning("render log %s is unreadable; starting a new one", path)

    def last(self, sender_id: str) -> int:
        return self._last.get(sender_id, 0)

    def claim(self, sender_id: str, seq: int) -> bool:
        """Reserve ``seq`` for the one session about to record and mark it. False when it is rendered
        already or another session (an older connection of the same sender) is recording it."""
        if seq <= self.last(sender_id) or (sender_id, seq) in self._claimed:
            return False
        self._claimed.add((sender_id, seq))
        return True

    def release(self, sender_id: str, seq: int) -> None:
        self._claimed.discard((sender_id, seq))

    def mark(self, sender_id: str, seq: int) -> None:
        if seq <= self.last(sender_id):
            return
        self._last[sender_id] = seq
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._last, sort_keys=True))
            os.replace(tmp, self._path)
