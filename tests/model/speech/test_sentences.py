"""Normalized text cut into the pieces a voice says one by one (model/speech/sentences.py)."""

from __future__ import annotations

import pytest

from model.speech.sentences import split_sentences


def test_split_sentences() -> None:
    assert split_sentences("One. Two! Three? Four") == ["One.", "Two!", "Three?", "Four"]
    assert split_sentences("") == [] and split_sentences("   ") == []
    assert split_sentences("Hello. ... World. !?") == ["Hello.", "World."]
    long = "word, " * 60 + "end."
    pieces = split_sentences(long, max_chars=50)
    assert all(len(p) <= 50 for p in pieces) and len(pieces) > 5
    assert " ".join(pieces).split() == long.split()
    run_on = "a" * 120
    assert split_sentences(run_on, max_chars=50) == ["a" * 50, "a" * 50, "a" * 20]
    with pytest.raises(ValueError, match="max_chars"):
        split_sentences("x", max_chars=3)
