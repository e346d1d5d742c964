"""What became of each sender's utterances, kept on disk so resends after a reconnect or a receiver
restart are answered as they were the first time, and sequence numbers stay honest.

Per sender: ``last``, the highest sequence number *settled* (rendered, or refused for good with an
``Error``), and its recent refusals with their code and reason. A sender's utterances are taken one
number after another and rendered in order, so everything at or below ``last`` is settled: rendered
unless it is among the refusals. A resend of a rendered one is a duplicate; of a refused one, the same
``Error`` again; of one still queued or rendering, it waits for it. A number above the next one
expected is a gap and refused (``Code.SEQ_GAP``), so nothing is ever taken as rendered that was not.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from pathlib import Path

logger = logging.getLogger(__name__)

REFUSALS_KEPT = 256  # per sender: the most recent refusals, answered again on a resend


class RenderLog:
    """sender id -> highest seq settled, its refusals, and (in memory) the highest seq accepted."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._last: dict[str, int] = {}
        self._refused: dict[str, OrderedDict[int, tuple[int, str]]] = {}
        self._accepted: dict[str, int] = {}  # highest seq queued by any session of the sender (not kept)
        self._claimed: set[tuple[str, int]] = set()  # being written right now (by one session)
        if path is not None and path.exists():
            try:
                self._load(json.loads(path.read_text()))
            except (ValueError, TypeError, AttributeError, KeyError):
                logger.warning("render log %s is unreadable; starting a new one", path)
                self._last, self._refused = {}, {}

    def _load(self, data: dict) -> None:
        if data.get("version") == 2:
            self._last = {str(k): int(v) for k, v in data["last"].items()}
            for sender, refused in data.get("refused", {}).items():
                self._refused[str(sender)] = OrderedDict((int(s), (int(c), str(r))) for s, (c, r) in refused.items())
        else:  # the first format: {sender: last rendered}
            self._last = {str(k): int(v) for k, v in data.items()}

    # ----------------------------------------------------------------------------------- reading
    def last(self, sender_id: str) -> int:
        """The highest seq of this sender settled (rendered or refused)."""
        return self._last.get(sender_id, 0)

    def refusal(self, sender_id: str, seq: int) -> tuple[int, str] | None:
        """``(code, reason)`` when ``seq`` was settled by a refusal (and is still remembered)."""
        return self._refused.get(sender_id, {}).get(seq)

    def expected(self, sender_id: str) -> int:
        """The next new seq this sender may send: one above everything settled or accepted."""
        return max(self.last(sender_id), self._accepted.get(sender_id, 0)) + 1

    # ----------------------------------------------------------------------------------- writing
    def accept(self, sender_id: str, seq: int) -> None:
        """A session queued ``seq`` (it must be ``expected`` or a resend)."""
        if seq > self.expected(sender_id):
            raise ValueError(f"#{seq} skips #{self.expected(sender_id)}")
        self._accepted[sender_id] = max(self._accepted.get(sender_id, 0), seq)

    def claim(self, sender_id: str, seq: int) -> bool:
        """Reserve ``seq`` for the one session about to record and mark it. False when it is settled
        already or another session (an older connection of the same sender) is recording it."""
        if seq <= self.last(sender_id) or (sender_id, seq) in self._claimed:
            return False
        self._claimed.add((sender_id, seq))
        return True

    def release(self, sender_id: str, seq: int) -> None:
        self._claimed.discard((sender_id, seq))

    def mark(self, sender_id: str, seq: int) -> None:
        """``seq`` was rendered (and recorded)."""
        self._settle(sender_id, seq)

    def refuse(self, sender_id: str, seq: int, code: int, reason: str) -> None:
        """``seq`` was refused for good (the sender was told, and drops it): a resend gets the same answer."""
        if seq <= self.last(sender_id):
            return
        refused = self._refused.setdefault(sender_id, OrderedDict())
        refused[seq] = (int(code), reason[:500])
        while len(refused) > REFUSALS_KEPT:
            refused.popitem(last=False)
        self._settle(sender_id, seq)

    def _settle(self, sender_id: str, seq: int) -> None:
        last = self.last(sender_id)
        if seq <= last:
            return
        if seq != last + 1:  # sessions take numbers one by one and render in order: a bug if not
            logger.error("render log: %s settles #%d after #%d; the numbers between were never seen", sender_id, seq, last)
        self._last[sender_id] = seq
        self._save()

    def _save(self) -> None:
        if self._path is None:
            return
        data = {
            "version": 2,
            "last": self._last,
            "refused": {s: {str(k): list(v) for k, v in r.items()} for s, r in self._refused.items() if r},
        }
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True))
        os.replace(tmp, self._path)
