"""Utterances the receiver has not rendered yet, kept on disk so a restart loses nothing.

The file is an append-only JSON-lines journal: ``{"add": {...}}`` when an utterance is queued,
``{"sent": seq}`` the first time it leaves, ``{"done": seq}`` when it is rendered or finally refused,
``{"reset": n}`` when numbering starts again at ``n`` (a receiver that lost its render log). Opening
replays the journal and rewrites it compactly. A torn last line (a crash mid-write) is ignored.

An utterance may name its ``source`` (``"<key>:<n>"``: the n-th line of a script), written in the same
record as the utterance itself, so a restarted ``textcall send --script`` knows exactly how many of
its lines an earlier run already queued (:meth:`Outbox.progress`), even if it was killed mid-write.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from dataclasses import asdict, dataclass, replace
from pathlib import Path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    seq: int
    caption: str = ""
    text: str = ""
    style_image_id: str = ""
    sent_unix_ms: int = 0
    source: str = ""  # "<key>:<n>": the n-th item queued from source <key> (a script), or ""


class Outbox:
    """Ordered pending utterances with the next sequence number. ``path=None`` keeps it in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._pending: OrderedDict[int, Pending] = OrderedDict()
        self._next_seq = 1
        self._sent: set[int] = set()
        self._progress: dict[str, int] = {}
        self._journal = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._replay(path)
            self._rewrite(path)

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, seq: int) -> bool:
        return seq in self._pending

    @property
    def next_seq(self) -> int:
        return self._next_seq

    def pending(self) -> list[Pending]:
        return list(self._pending.values())

    def get(self, seq: int) -> Pending | None:
        return self._pending.get(seq)

    def add(
        self, *, caption: str = "", text: str = "", style_image_id: str = "", sent_unix_ms: int, source: str = ""
    ) -> Pending:
        return self._add(Pending(self._next_seq, caption, text, style_image_id, sent_unix_ms, source))

    def progress(self, key: str) -> int:
        """How many items from source ``key`` were ever queued (by this run or an earlier one)."""
        return self._progress.get(key, 0)

    def _note_source(self, source: str) -> None:
        key, _, number = source.rpartition(":")
        if key and number.isdigit():
            self._progress[key] = max(self._progress.get(key, 0), int(number))

    def _add(self, item: Pending) -> Pending:
        self._next_seq = item.seq + 1
        if item.source:
            self._note_source(item.source)
        self._pending[item.seq] = item
        self._write({"add": asdict(item)})
        return item

    def mark_sent(self, seq: int) -> None:
        if seq in self._pending and seq not in self._sent:
            self._sent.add(seq)
            self._write({"sent": seq})

    def done(self, seq: int) -> Pending | None:
        item = self._pending.pop(seq, None)
        self._sent.discard(seq)
        if item is not None:
            self._write({"done": seq})
        return item

    def skip_to(self, last_settled_seq: int) -> list[Pending]:
        """The receiver's Welcome: it has settled (rendered, or refused with an Error) every utterance
        of ours up to ``last_settled_seq``, and takes the next number after it.

        - Ones at or below it that we sent stay pending and are sent again as they are: the receiver
          answers each as it ended (a DUPLICATE ack, or the Error it was refused with), so an ack or
          an Error lost with the old connection is learnt, never guessed.
        - Ones at or below it never sent collide with numbers an earlier run of this sender used (its
          journal was lost): they get fresh numbers above it, in order, so nothing is lost.
        - When the receiver expects a lower number than ours (it lost its render log), what is
          pending is renumbered from ``last_settled_seq + 1``: it refuses numbers that skip ahead.

        Returns nothing (kept for callers): every pending utterance is now either resent or renumbered.
        """
        last = last_settled_seq
        collide = [s for s in self._pending if s <= last and s not in self._sent]
        ahead = min((s for s in self._pending if s > last), default=self._next_seq)
        if collide or ahead > last + 1:
            keep = [item for s, item in self._pending.items() if s <= last and s in self._sent]
            move = [item for s, item in self._pending.items() if not (s <= last and s in self._sent)]
            for item in move:
                self._pending.pop(item.seq)
                self._sent.discard(item.seq)
                self._write({"done": item.seq})
            self._next_seq = last + 1
            self._write({"reset": self._next_seq})  # may go down, unlike "next"
            for item in move:  # in their order: renumbered ones were queued first
                self._add(replace(item, seq=self._next_seq))
            assert all(item.seq in self._pending for item in keep)
        elif last >= self._next_seq:
            self._next_seq = last + 1
            self._write({"next": self._next_seq})
        return []

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # ------------------------------------------------------------------------------------ journal

    def _replay(self, path: Path) -> None:
        if not path.exists():
            return
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            try:
                record = json.loads(line)
                if "add" in record:
                    item = Pending(**record["add"])
                    self._pending[item.seq] = item
                    if item.source:
                        self._note_source(item.source)
                    self._next_seq = max(self._next_seq, item.seq + 1)
                elif "sent" in record:
                    self._sent.add(int(record["sent"]))
                elif "done" in record:
                    self._pending.pop(int(record["done"]), None)
                    self._sent.discard(int(record["done"]))
                    self._next_seq = max(self._next_seq, int(record["done"]) + 1)
                elif "next" in record:
                    self._next_seq = max(self._next_seq, int(record["next"]))
                elif "reset" in record:  # the receiver lost its render log: numbering starts again lower
                    self._next_seq = int(record["reset"])
                elif "progress" in record:
                    for key, count in dict(record["progress"]).items():
                        self._note_source(f"{key}:{int(count)}")
            except (ValueError, TypeError, KeyError):
                logger.warning("outbox %s: ignoring unreadable line %d", path, number)
        if self._pending:
            logger.info("outbox %s: %d unsent utterance(s) recovered", path, len(self._pending))

    def _rewrite(self, path: Path) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.write(json.dumps({"next": self._next_seq}) + "\n")
            if self._progress:
                out.write(json.dumps({"progress": self._progress}) + "\n")
            for item in self._pending.values():
                out.write(json.dumps({"add": asdict(item)}) + "\n")
                if item.seq in self._sent:
                    out.write(json.dumps({"sent": item.seq}) + "\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
        self._journal = path.open("a", encoding="utf-8")

    def _write(self, record: dict) -> None:
        if self._journal is None:
            return
        self._journal.write(json.dumps(record) + "\n")
        self._journal.flush()
        os.fsync(self._journal.fileno())
