"""GRID's sentence grammar: command colour preposition letter digit adverb.

Cooke et al. (2006), "An audio-visual corpus for speech perception and automatic speech
recognition", JASA 120(5): 4 commands x 4 colours x 4 prepositions x 25 letters (no W) x 10 digits
x 4 adverbs. A sentence id is the first character of each word, the digit as a numeral:
"bin blue at f two now" -> ``bbaf2n``, the name GRID gives its files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COMMANDS = ("bin", "lay", "place", "set")
COLOURS = ("blue", "green", "red", "white")
PREPOSITIONS = ("at", "by", "in", "with")
LETTERS = tuple("abcdefghijklmnopqrstuvxyz")  # GRID leaves out "w" (three syllables)
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
ADVERBS = ("again", "now", "please", "soon")
SLOTS = ("command", "colour", "preposition", "letter", "digit", "adverb")


@dataclass(frozen=True)
class Sentence:
    command: str
    colour: str
    preposition: str
    letter: str
    digit: str
    adverb: str

    def __post_init__(self) -> None:
        for name, value, allowed in zip(SLOTS, self.words, (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)):
            if value not in allowed:
                raise ValueError(f"{value!r} is not a GRID {name}")

    @property
    def words(self) -> tuple[str, ...]:
        return (self.command, self.colour, self.preposition, self.letter, self.digit, self.adverb)

    @property
    def text(self) -> str:
        return " ".join(self.words)

    @property
    def id(self) -> str:
        return f"{self.command[0]}{self.colour[0]}{self.preposition[0]}{self.letter}{DIGITS.index(self.digit)}{self.adverb[0]}"

    @classmethod
    def from_words(cls, words: list[str] | tuple[str, ...]) -> Sentence:
        if len(words) != 6:
            raise ValueError(f"a GRID sentence has 6 words, got {len(words)}: {words}")
        return cls(*(w.lower() for w in words))


def random_sentences(n: int, rng: np.random.Generator) -> list[Sentence]:
    """``n`` distinct random sentences (distinct ids), like one speaker's share of GRID."""
    if n > 64000:
        raise ValueError("GRID's grammar has 64,000 sentences")
    seen: set[str] = set()
    out: list[Sentence] = []
    while len(out) < n:
        s = Sentence(*(str(rng.choice(slot)) for slot in (COMMANDS, COLOURS, PREPOSITIONS, LETTERS, DIGITS, ADVERBS)))
        if s.id not in seen:
            seen.add(s.id)
            out.append(s)
    return out
