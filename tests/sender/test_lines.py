import pytest

from sender.app import Line, parse_line, read_script


@pytest.mark.parametrize(
    "raw,line",
    [
        ("hello there", Line(text="hello there")),
        ("A woman is talking | hello |", Line("A woman is talking", "hello", "")),
        ("| | anna", Line("", "", "anna")),
        ("| |", Line()),
        ("A man is talking |", Line(caption="A man is talking")),
    ],
)
def test_parse_line(raw, line):
    assert parse_line(raw) == line


def test_too_many_bars():
    with pytest.raises(ValueError):
        parse_line("a | b | c | d")


def test_script_skips_comments_and_blank_lines(tmp_path):
    script = tmp_path / "s.txt"
    script.write_text("# comment\n\nhello\nA man is talking | hi | \n")
    assert read_script(script) == [Line(text="hello"), Line("A man is talking", "hi", "")]
