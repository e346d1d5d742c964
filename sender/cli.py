"""The ``textcall`` command.

``textcall send`` lives here, in the sender, which imports neither torch nor the receiver. Every
other subcommand (``receive``, ``demo``, ``corpus``, ``train``, ...) is a plugin registered under the
``textcall.commands`` entry-point group: its module is imported only to add its parser, and its
heavy dependencies only when it runs. A laptop with the sender alone installed still gets a clear
message for those subcommands instead of an ImportError.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from importlib.metadata import entry_points

from protocol.ice import add_ice_flags

logger = logging.getLogger(__name__)

DESCRIPTION = """\
textcall: a video call that sends only text. The sender sends captions and speech text over a
WebRTC data channel; the receiver generates the talking-head video and its speech.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textcall", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_send(subparsers)
    for entry in sorted(entry_points(group="textcall.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:  # a plugin whose own light imports are missing
            _register_unavailable(subparsers, entry.name, exc)
            continue
        register(subparsers)
    return parser


def _register_unavailable(subparsers, name: str, exc: ImportError) -> None:
    def run(args: argparse.Namespace) -> int:
        print(
            f"textcall {name} is not available in this install ({exc}).\n"
            "Install the receiver stack: pip install 'textcall[receiver]'",
            file=sys.stderr,
        )
        return 2

    sub = subparsers.add_parser(name, help="(needs the receiver extra)")
    sub.set_defaults(run=run)


def register_send(subparsers) -> None:
    sub = subparsers.add_parser(
        "send",
        help="connect to a receiver and send utterances",
        description=(
            "Connect to a textcall receiver and send utterances.\n\n"
            "Interactive (default): type one line per utterance, either just the speech text or\n"
            "  caption | speech text | style id\n"
            "with any part left empty, e.g. 'A woman is talking | hello there |' or '| | anna'.\n"
            "Commands: /image PATH [ID] uploads a style image, /quit leaves.\n"
            "--script FILE sends one utterance per line in the same format ('#' starts a comment).\n"
            "--text/--caption/--style send a single utterance and exit once it is rendered."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument(
        "--receiver",
        default=os.environ.get("TEXTCALL_RECEIVER", "http://127.0.0.1:8765"),
        help="receiver URL (env TEXTCALL_RECEIVER; default %(default)s)",
    )
    sub.add_argument(
        "--token",
        default=os.environ.get("TEXTCALL_TOKEN"),
        help="bearer token the receiver expects (env TEXTCALL_TOKEN)",
    )
    sub.add_argument(
        "--sender-id",
        default=os.environ.get("TEXTCALL_SENDER_ID"),
        help="stable id of this sender (default: derived from user and host)",
    )
    source = sub.add_mutually_exclusive_group()
    source.add_argument("--script", metavar="FILE", help="send each line of FILE, then exit")
    source.add_argument("--text", help="speech text of a single utterance")
    sub.add_argument("--caption", help="video caption: the paper's 'A man is talking' or your own words, e.g.\n'a woman with red curly hair and glasses' (one-shot; unknown words are passed over)")
    sub.add_argument("--style", metavar="ID", help="style image id on the receiver (one-shot)")
    sub.add_argument(
        "--style-image",
        metavar="PATH",
        help="upload this image first; the utterances may then use its id (the file's stem); a single "
        "utterance (--text/--caption/--once) without --style shows it",
    )
    sub.add_argument(
        "--once",
        action="store_true",
        help="send one utterance built from --caption/--text/--style (all may be empty) and exit",
    )
    sub.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds to wait for every utterance to be rendered before giving up (default 600)",
    )
    sub.add_argument(
        "--outbox",
        metavar="PATH",
        help="journal of unacked utterances, resent after a restart "
        "(default ~/.local/state/textcall/outbox-<sender id>.jsonl; 'none' keeps it in memory)",
    )
    sub.add_argument(
        "--secret-file",
        metavar="PATH",
        help="this sender's secret, made on first use (0600): the first Hello with it binds the sender id "
        "on a receiver, which then refuses the id to anyone without it (default "
        "~/.local/state/textcall/secret-<sender id>; 'none': a new one per run, so the id is usable "
        "only until this process ends on receivers that saw it)",
    )
    add_ice_flags(sub, who="sender")
    sub.add_argument(
        "--tls-ca",
        metavar="FILE",
        help="PEM certificate(s) to trust for an https:// receiver (a self-signed or private CA);\n"
        "the system's CAs are used without it",
    )
    sub.add_argument(
        "--loopback",
        action="store_true",
        help="offer only loopback ICE candidates (sender and receiver on one machine)",
    )
    low = sub.add_argument_group("low bitrate (see README 'Bits per second'; all of it needs a receiver that offers it)")
    low.add_argument("--compress", action="store_true",
                     help="send caption and text compressed against the shared dictionary and the call's\n"
                     "earlier texts (if offered): by a PPM model (about 22 %% fewer bytes than DEFLATE)")
    low.add_argument("--text-coder", choices=("ppm", "deflate"), default="ppm",
                     help="how --compress packs text: ppm (default; DEFLATE where the receiver lacks it) or\n"
                     "deflate (what receivers before 2026-12-07 offer)")
    low.add_argument("--quiet-heartbeat", action="store_true",
                     help="no QUEUED acks, RENDERED acks merged (up to 30 s late); ping only after 25 s without\n"
                     "anything from the receiver (if offered)")
    low.add_argument("--batch", type=float, metavar="SECONDS", default=0.0,
                     help="join lines typed within SECONDS into one utterance (0: one per line)")
    low.add_argument("--conversational", action="store_true",
                     help="fewest bytes with no wait: --compress --quiet-heartbeat, one utterance per line")
    low.add_argument("--economy", action="store_true",
                     help="fewer bytes still: --compress --quiet-heartbeat --batch 8 (no line waits over 8 s)")
    low.add_argument("--low-bitrate", action="store_true",
                     help="the same as --economy (until 2026-12-06: 15 s batches)")
    low.add_argument("--pace", type=float, metavar="WPM", default=0.0,
                     help="with --script: send each line when a person would have said it at WPM "
                     "words per minute (measurements; default: all at once)")
    sub.set_defaults(run=_run_send)


def _run_send(args: argparse.Namespace) -> int:
    from sender.app import SendOptions, run_send  # aiortc is imported only when sending

    os.umask(0o077)  # the outbox and its journal hold the speech text: the owner's only (0600 / 0700)
    if not args.token:
        print("textcall send: --token (or TEXTCALL_TOKEN) is required", file=sys.stderr)
        return 2
    try:
        options = SendOptions.from_args(args)
    except (ValueError, OSError) as exc:
        print(f"textcall send: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(run_send(options))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
