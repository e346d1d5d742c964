"""Normalized text cut into the pieces a voice says one by one: sentences no longer than
``max_chars``, then at commas, then at spaces, so long text is synthesized piece by piece.

    >>> split_sentences("One. Two! Three?")
    ['One.', 'Two!', 'Three?']
"""

from __future__ import annotations

import re

__all__ = ["split_sentences"]

_RE_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+")
_RE_CLAUSE_END = re.compile(r"(?<=[,;:])\s+")


def split_sentences(text: str, max_chars: int = 300) -> list[str]:
    """Sentences of ``text``, each at most ``max_chars`` long; pieces with nothing to say are left out.

    A sentence longer than ``max_chars`` is cut at commas/semicolons/colons, then at spaces, and a
    single word longer than ``max_chars`` is cut hard.
    """
    if max_chars < 16:
        raise ValueError(f"max_chars must be at least 16, got {max_chars}")
    pieces: list[str] = []
    for sentence in _RE_SENTENCE_END.split(text.strip()):
        sentence = sentence.strip()
        if not sentence:
            continue
        if len(sentence) <= max_chars:
            pieces.append(sentence)
            continue
        for clause in _pack(_RE_CLAUSE_END.split(sentence), max_chars):
            if len(clause) <= max_chars:
                pieces.append(clause)
                continue
            for part in _pack(clause.split(" "), max_chars):
                pieces.extend(part[i : i + max_chars] for i in range(0, len(part), max_chars))
    return [p for p in pieces if any(c.isalnum() for c in p)]


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Join consecutive parts with spaces while the result stays within ``max_chars``."""
    packed: list[str] = []
    for part in parts:
        if not part:
            continue
        if packed and len(packed[-1]) + 1 + len(part) <= max_chars:
            packed[-1] += " " + part
        else:
            packed.append(part)
    return packed
