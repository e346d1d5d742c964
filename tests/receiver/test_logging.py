"""What a peer says reaches the log as one harmless line (issue 28: a forged log line got through)."""

from __future__ import annotations

from receiver.session import loggable


def test_control_characters_cannot_forge_a_log_line() -> None:
    forged = "bye\n2026-12-06 12:00:00 INFO receiver: session x: offer from 10.0.0.1 accepted\x1b[2J"
    line = loggable(forged)
    assert "\n" not in line and "\x1b" not in line and "\\n2026" in line and "\\x1b" in line
    assert loggable("see you tomorrow, Zoë") == "see you tomorrow, Zoë"  # printable text is left alone
    assert loggable("x" * 500).endswith("...") and len(loggable("x" * 500)) == 203
