"""Text normalization for the voices: numbers, money, abbreviations, symbols, dropped characters."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.speech.normalize import cardinal, normalize, ordinal, year
from model.speech.sentences import split_sentences


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "zero"), (7, "seven"), (13, "thirteen"), (20, "twenty"), (42, "forty-two"), (100, "one hundred"),
        (101, "one hundred and one"), (999, "nine hundred and ninety-nine"), (1000, "one thousand"),
        (1_234_567, "one million two hundred and thirty-four thousand five hundred and sixty-seven"),
        (2_000_000_017, "two billion and seventeen"), (-5, "minus five"),
        (10**21 + 7, "one " + "zero " * 20 + "seven"),  # past num2words' quintillions: digit by digit
    ],
)
def test_cardinal(n: int, words: str) -> None:
    assert cardinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1, "first"), (2, "second"), (3, "third"), (4, "fourth"), (5, "fifth"), (8, "eighth"), (9, "ninth"),
     (11, "eleventh"), (12, "twelfth"), (20, "twentieth"), (21, "twenty-first"), (100, "one hundredth"),
     (112, "one hundred and twelfth")],
)
def test_ordinal(n: int, words: str) -> None:
    assert ordinal(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [(1984, "nineteen eighty-four"), (1900, "nineteen hundred"), (1905, "nineteen oh-five"),
     (2000, "two thousand"), (2005, "two thousand and five"), (2024, "twenty twenty-four")],
)
def test_year(n: int, words: str) -> None:
    assert year(n) == words


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # numbers
        ("I have 3 apples.", "I have three apples."),
        ("It was -5 degrees.", "It was minus five degrees."),
        ("Pi is 3.14", "Pi is three point one four"),
        ("1,234,567 people", "one million two hundred and thirty-four thousand five hundred and sixty-seven people"),
        ("Agent 007", "Agent zero zero seven"),
        ("the 1st, 2nd, 3rd and 21st", "the first, second, third and twenty-first"),
        ("In 1984 and since 2024.", "In nineteen eighty-four and since twenty twenty-four."),
        ("2024 apples", "two thousand and twenty-four apples"),
        ("the 1990s and '80s", "the nineteen nineties and eighties"),
        ("pages 10-20", "pages ten to twenty"),
        ("3/4 of it", "three quarters of it"),
        # money, percent, time
        ("$5.20", "five dollars and twenty cents"),
        ("$1", "one dollar"),
        ("$0.99", "ninety-nine cents"),
        ("£3.50", "three pounds and fifty pence"),
        ("€1,000,000", "one million euros"),
        ("$2.5 million", "two point five million dollars"),
        ("50% off", "fifty percent off"),
        ("at 3:30", "at three thirty"),
        ("at 3:05 pm", "at three oh five p m"),
        ("at 10:00", "at ten o'clock"),
        ("at 5 a.m.", "at five a m"),
        # abbreviations
        ("Dr. Smith and Mr. and Mrs. Jones", "Doctor Smith and Mister and Missus Jones"),
        ("St. Louis is on Main St.", "Saint Louis is on Main Street."),
        ("fruit, e.g. apples, i.e. food, etc.", "fruit, for example apples, that is food, et cetera."),
        ("cats vs. dogs", "cats versus dogs"),
        # symbols
        ("salt & pepper", "salt and pepper"),
        ("me @ home", "me at home"),
        ("2 + 2 = 4", "two plus two equals four"),
        ("#1 fan", "number one fan"),
        ("No. 5", "number five"),
        ("5 km", "five kilometers"),
        ("20°C", "twenty degrees Celsius"),
        # URLs and e-mail
        ("see https://www.example.com/a/b?c=1 now", "see example dot com now"),
        ("mail john.doe@example.org", "mail john dot doe at example dot org"),
        # typography
        ("He said \u201chi\u201d \u2014 then left\u2026", 'He said "hi", then left...'),
    ],
)
def test_normalize_table(text: str, said: str) -> None:
    assert normalize(text) == said


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "...", "!?", "\U0001f642\U0001f642", "\u4f60\u597d"])
def test_nothing_sayable_gives_empty_text(text: str) -> None:
    assert normalize(text) == ""


def test_unsayable_characters_dropped_with_one_warning(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="model.speech.normalize"):
        said = normalize("Hello \U0001f44b world \u4f60\u597d\x07 and \u041f\u0440\u0438\u0432\u0435\u0442 ok")
    assert said == "Hello world and ok"
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "U+1F44B" in message and "U+4F60" in message and "U+0007" in message
    assert normalize("one\x00two\U0001f600three") == "one two three"  # what separated words still does


def test_alphabet_strips_accents_and_drops_unknown(caplog) -> None:
    alphabet = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ ,.'-!?")
    with caplog.at_level(logging.WARNING, logger="model.speech.normalize"):
        assert normalize('Caf\u00e9 "na\u00efve"; stra\u00dfe', alphabet=alphabet) == "Cafe naive, strae"
    assert "U+00DF" in caplog.text  # sharp s has no plain form: dropped and named
    assert normalize("Caf\u00e9") == "Caf\u00e9"  # espeak-ng can say it
    lower_only = set("abcdefghijklmnopqrstuvwxyz .,")
    assert normalize("Hello \u00c9mile.", alphabet=lower_only) == "Hello Emile."  # the model's cleaner lowercases


def test_paragraph_break_ends_a_sentence() -> None:
    assert split_sentences(normalize("First line\nstill first\n\nSecond part")) == ["First line still first.", "Second part"]


def test_not_text_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        normalize(None)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_never_crashes_and_output_is_plain(text: str) -> None:
    said = normalize(text)
    assert not any(c.isdigit() for c in said)
    assert all(c.isalpha() or c in " .,!?;:'\"-()" for c in said)
    for piece in split_sentences(said, max_chars=40):
        assert 0 < len(piece) <= 40
