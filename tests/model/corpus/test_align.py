"""GRID's .align format and grammar, against text written the way GRID's files are."""

from __future__ import annotations

import pytest

from model.corpus import align
from model.corpus.grammar import Sentence
from model.corpus.grid import SkipClip, segment_window

# bbaf2n.align as GRID ships it (speaker 1): times in 1/1000 of a 25 fps frame
GRID_ALIGN = """0 23750 sil
23750 29500 bin
29500 34000 blue
34000 35500 at
35500 41000 f
41000 47250 two
47250 53000 now
53000 74500 sil
"""


def test_parse_grid_align() -> None:
    words = align.parse_align(GRID_ALIGN)
    assert [w.word for w in words] == ["sil", "bin", "blue", "at", "f", "two", "now", "sil"]
    assert words[1].start == pytest.approx(0.95) and words[1].end == pytest.approx(1.18)
    assert words[-1].end == pytest.approx(2.98)  # 74500 / 25000, i.e. frame 74.5
    assert [w.word for w in align.spoken(words)] == ["bin", "blue", "at", "f", "two", "now"]


def test_round_trip_keeps_units(tmp_path) -> None:
    words = align.parse_align(GRID_ALIGN)
    path = tmp_path / "bbaf2n.align"
    align.write_align(path, words)
    assert path.read_text() == GRID_ALIGN
    assert align.read_align(path) == words


@pytest.mark.parametrize("text", ["", "0 100\n", "a b sil\n", "100 50 bin\n", "0 100 sil\n50 200 bin\n"])
def test_bad_alignments_are_refused(text: str) -> None:
    with pytest.raises(align.AlignError):
        align.parse_align(text)


def test_sentence_id_is_grids_file_name() -> None:
    s = Sentence.from_words("bin blue at f two now".split())
    assert s.id == "bbaf2n" and s.text == "bin blue at f two now"
    with pytest.raises(ValueError):
        Sentence.from_words("bin blue at w two now".split())  # GRID has no letter w


def test_segment_window_centres_letter_and_digit() -> None:
    words = align.parse_align(GRID_ALIGN)
    start, inside = segment_window(words, duration=3.0)
    # letter f 1.42..1.64 and digit two 1.64..1.89 -> centre 1.655
    assert start == pytest.approx(1.655 - 0.5)
    assert "f" in inside and "two" in inside


def test_segment_window_needs_a_digit() -> None:
    words = align.parse_align("0 25000 sil\n25000 50000 bin\n50000 75000 sil\n")
    with pytest.raises(SkipClip) as info:
        segment_window(words, duration=3.0)
    assert info.value.reason == "no_digit"
