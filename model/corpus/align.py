"""GRID's word alignments (``.align`` files).

One line per word, ``start end word``, times in units of 1/1000 of a video frame at 25 fps
(so 25,000 units a second, which is also one unit per sample of GRID's 25 kHz audio). Silence is
the word ``sil`` and short pauses ``sp``. A three-second clip ends at 75000::

    0 23750 sil
    23750 29500 bin
    ...
    57500 74500 sil
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

UNITS_PER_SECOND = 25_000
SILENCE = frozenset({"sil", "sp"})


class AlignError(ValueError):
    """An alignment file that is not in GRID's format."""


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float  # seconds

    @property
    def is_silence(self) -> bool:
        return self.word in SILENCE


def parse_align(text: str) -> list[Word]:
    words: list[Word] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 3:
            raise AlignError(f"line {number}: expected 'start end word', got {line!r}")
        try:
            start, end = int(parts[0]), int(parts[1])
        except ValueError as exc:
            raise AlignError(f"line {number}: times must be integers, got {line!r}") from exc
        if end < start or start < 0:
            raise AlignError(f"line {number}: bad interval {start}..{end}")
        if words and start < round(words[-1].end * UNITS_PER_SECOND):
            raise AlignError(f"line {number}: starts before the previous word ends")
        words.append(Word(parts[2].lower(), start / UNITS_PER_SECOND, end / UNITS_PER_SECOND))
    if not words:
        raise AlignError("empty alignment")
    return words


def read_align(path: str | Path) -> list[Word]:
    try:
        return parse_align(Path(path).read_text(encoding="ascii"))
    except UnicodeDecodeError as exc:
        raise AlignError(f"{path}: not ASCII text") from exc


def format_align(words: list[Word]) -> str:
    lines = []
    for w in words:
        lines.append(f"{round(w.start * UNITS_PER_SECOND)} {round(w.end * UNITS_PER_SECOND)} {w.word}")
    return "\n".join(lines) + "\n"


def write_align(path: str | Path, words: list[Word]) -> None:
    Path(path).write_text(format_align(words), encoding="ascii")


def spoken(words: list[Word]) -> list[Word]:
    """The words without silences."""
    return [w for w in words if not w.is_silence]
