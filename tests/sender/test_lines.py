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


def test_one_utterance_with_a_picture_to_upload_shows_it(tmp_path):
    """`textcall send --style-image me.png --text hi`: the picture is uploaded and the utterance uses it
    (an explicit --style wins; a script's lines name their own ids)."""
    from sender.app import SendOptions
    from sender.cli import build_parser

    picture = tmp_path / "me.png"
    picture.write_bytes(b"\x89PNG not decoded by the sender")

    def options(*flags):
        return SendOptions.from_args(build_parser().parse_args(
            ["send", "--token", "t" * 16, "--outbox", "none", "--secret-file", "none", "--style-image", str(picture), *flags]))

    single = options("--text", "hi")
    assert single.single == Line("", "hi", "me") and set(single.style_images) == {"me"}
    assert options("--text", "hi", "--style", "anna").single.style_image_id == "anna"
    script = tmp_path / "s.txt"
    script.write_text("hello\n")
    scripted = options("--script", str(script))
    assert scripted.single is None and scripted.script == [Line(text="hello")]
