"""``textcall report``: registered as a plugin; everything heavy is imported when it runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    sub = subparsers.add_parser(
        "report",
        help="bitrate report: the text link against WebRTC media and offline codecs, same clips",
        description=(
            "Measure what the text link costs and what sending the audio and video would have cost,\n"
            "on the same clips, and write report.md, report.html, report.json and bitrate.png.\n\n"
            "  textcall report                       # built-in two minutes of continuous speech\n"
            "  textcall report demo-out              # a demo's or a session's recordings\n"
            "  textcall report --script lines.txt    # speak these utterances over loopback first\n\n"
            "The text link is measured by real `textcall send` processes speaking the utterances at\n"
            "--wpm words per minute (so a 60 s script takes about 60 s), once per option (batching,\n"
            "compression, heartbeat), all at the same time; the WebRTC baselines stream in real time."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    sub.add_argument("recordings", nargs="?", type=Path,
                     help="a session folder (NNNN.mp4 + session.jsonl) or a demo/receiver output folder")
    sub.add_argument("--script", type=Path, metavar="FILE",
                     help="utterances, one per line ('caption | speech text | style id' or just text)")
    sub.add_argument("--out", type=Path, default=Path("report-out"), help="output folder (default %(default)s)")
    sub.add_argument("--quick", action="store_true",
                     help="four text options (conversational, economy with PPM and with DEFLATE text, plain)\n"
                     "and a small codec sweep")
    sub.add_argument("--text-only", action="store_true", help="skip the media baselines")
    sub.add_argument("--wpm", type=float, default=150.0, help="speaking pace (default %(default)s)")
    sub.add_argument("--max-media-seconds", type=float, default=20.0,
                     help="seconds of the clips used for the media baselines (default %(default)s)")
    sub.add_argument("--baseline-voice", default="mixed", metavar="VOICE",
                     help="voice that speaks the script for the audio baselines (Opus, Codec2): mixed (default:\n"
                     "the demo's voices), espeak, piper, kokoro, or none for the stub's tones; recordings\n"
                     "keep their own speech")
    sub.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from receiver.report.render import write_report
    from receiver.report.run import ReportConfig, build_report

    if not args.verbose:
        logging.getLogger("aiortc").setLevel(logging.ERROR)
    try:
        config = ReportConfig(out_dir=args.out, recordings=args.recordings, script=args.script, quick=args.quick,
                              media=not args.text_only, wpm=args.wpm, max_media_seconds=args.max_media_seconds,
                              speech_voice="" if args.baseline_voice == "none" else args.baseline_voice)
    except ValueError as exc:
        print(f"textcall report: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(build_report(config))
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"textcall report: {exc}", file=sys.stderr)
        return 1
    files = write_report(report, config.out_dir)
    print(report["summary"])
    for line in (report.get("bars") or {}).get("lines", []):
        print(f"  {line}")
    for kind, path in files.items():
        print(f"{kind}: {path}")
    return 0
