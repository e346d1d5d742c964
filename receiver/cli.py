"""``textcall receive`` and ``textcall demo``. Importing this module stays light: the receiver's
stack (aiortc, torch, ...) is imported only when a command runs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from model import GeneratorSettings, add_generation_flags, generation_settings
from protocol.ice import add_ice_flags

DEFAULT_PORT = 8765


def _add_common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--model",
        default="default",
        help="generator: 'default' (the talking-head model shipped in model/weights), a folder of\n"
        "other weights (diffusion/, classifier/, autoguide/, lipsync/), or 'stub' (instant test\n"
        "pattern)\n"
        "(default %(default)s)",
    )
    sub.add_argument("--device", default="cpu", help="torch device for generation, e.g. cuda:0")
    add_generation_flags(sub)


def register_receive(subparsers) -> None:
    sub = subparsers.add_parser(
        "receive",
        help="run a receiver: accept senders, generate, play and record clips",
        description=(
            "Run a textcall receiver. Senders connect with `textcall send --receiver URL --token T`.\n"
            "Every utterance becomes a clip recorded under --out/<session>/NNNN.mp4 (plus\n"
            "session.mp4, session.jsonl and bitrate.json), and is played live with --play."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    _add_common(sub)
    sub.add_argument("--host", default="127.0.0.1", help="address to bind (default %(default)s; "
                     "use 0.0.0.0 to accept other machines)")
    sub.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    sub.add_argument("--token", action="append", help="accepted bearer token (repeatable; env "
                     "TEXTCALL_TOKEN); a random one is made and printed when none is given")
    sub.add_argument("--token-file", type=Path, help="file with one accepted token per line")
    sub.add_argument("--tokens", type=Path, metavar="FILE",
                     help="per-sender tokens: one 'sender_id token' per line, or JSON\n"
                     '{"sender_id": "token"}; a session opened with one of them is that sender')
    sub.add_argument("--tls-cert", type=Path, metavar="PEM",
                     help="serve https:// with this certificate (chain); needs --tls-key")
    sub.add_argument("--tls-key", type=Path, metavar="PEM", help="private key of --tls-cert")
    sub.add_argument("--out", type=Path, default=Path("textcall-out"),
                     help="folder for recordings (default %(default)s)")
    sub.add_argument("--play", action="store_true",
                     help="play clips live (OpenCV window + sound card); falls back to recording")
    sub.add_argument("--no-record", action="store_true", help="do not write MP4s (needs --play)")
    sub.add_argument("--viewer", action="store_true",
                     help="serve a browser viewer at /view: live clips, captions and bitrate for\n"
                     "holders of a token (a per-sender token sees only that sender)")
    sub.add_argument("--gallery", type=Path, help="folder of style images; each file's stem is its id")
    add_ice_flags(sub, who="receiver")
    sub.add_argument("--loopback", action="store_true",
                     help="use only 127.0.0.1 ICE candidates (sender on this machine)")
    sub.add_argument("--max-peers", type=int, default=16, help="concurrent senders (default %(default)s)")
    sub.add_argument("--queue-size", type=int, default=8,
                     help="utterances a sender may have waiting (default %(default)s)")
    sub.add_argument("--max-rate", type=float, default=20.0,
                     help="utterances per second per sender, bursts of --queue-size (default %(default)s)")
    sub.set_defaults(run=_run_receive)


def register_demo(subparsers) -> None:
    sub = subparsers.add_parser(
        "demo",
        help="sender and receiver on loopback: render sample utterances, write MP4s and a bitrate report",
        description=(
            "Start a receiver and a sender on this machine, send a few utterances that cover every\n"
            "input option (caption only, speech text only, both, nothing, a style image), and leave\n"
            "the MP4s, a contact sheet and the bitrate JSON in --out."
        ),
        formatter_class=argparse.RawTextHelpFormatter,
    )
    _add_common(sub)
    sub.add_argument("--out", type=Path, default=Path("demo-out"), help="output folder (default %(default)s)")
    sub.add_argument("--play", action="store_true", help="also play the clips live")
    sub.add_argument("--view", action="store_true",
                     help="keep the receiver running after the script (until Ctrl-C) so the\n"
                     "clips can be watched in a browser at the printed viewer URL")
    sub.set_defaults(run=_run_demo)


def _tokens(args: argparse.Namespace) -> tuple[frozenset[str], bool]:
    tokens = set(args.token or ())
    if os.environ.get("TEXTCALL_TOKEN"):
        tokens.add(os.environ["TEXTCALL_TOKEN"])
    if args.token_file:
        for line in args.token_file.read_text(encoding="utf-8").splitlines():
            if line.strip() and not line.startswith("#"):
                tokens.add(line.strip())
    if tokens or args.tokens:
        return frozenset(tokens), False
    from receiver.tokens import new_token

    return frozenset({new_token()}), True


def _run_receive(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    os.umask(0o077)  # recordings, journals and uploads hold what people said: the owner's only (0600 / 0700)
    if not args.verbose:  # sessions opening/closing and their bitrate summaries are the console
        logging.getLogger("receiver").setLevel(logging.INFO)

    from protocol.ice import ice_servers_from_args
    from receiver.config import ReceiverConfig
    from receiver.serve import serve
    from receiver.tokens import load_sender_tokens

    try:
        tokens, generated = _tokens(args)
        sender_tokens = load_sender_tokens(args.tokens) if args.tokens else ()
        if args.no_record and not args.play:
            raise ValueError("--no-record without --play would throw every clip away")
        config = ReceiverConfig(
            tokens=tokens,
            out_dir=args.out,
            host=args.host,
            port=args.port,
            model=args.model,
            device=args.device,
            generator_settings=_generator_settings(args),
            record=not args.no_record,
            play=args.play,
            gallery_dir=args.gallery,
            ice_servers=ice_servers_from_args(args),
            loopback=args.loopback,
            max_peers=args.max_peers,
            queue_size=args.queue_size,
            max_utterances_per_second=args.max_rate,
            sender_tokens=sender_tokens,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            viewer=args.viewer,
        )
    except (ValueError, OSError) as exc:
        print(f"textcall receive: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(serve(config, show_token=next(iter(tokens)) if generated else None))


def _generator_settings(args: argparse.Namespace) -> GeneratorSettings | None:
    """The talking-head settings given on the command line, validated (the stub takes none)."""
    if args.model == "stub":
        return None
    return generation_settings(args)


def _run_demo(args: argparse.Namespace) -> int:
    import asyncio

    os.umask(0o077)  # as `receive`: what it writes holds the speech text
    from receiver.demo import run_demo

    try:
        settings = _generator_settings(args)
    except ValueError as exc:
        print(f"textcall demo: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(
        run_demo(out_dir=args.out, model=args.model, device=args.device, play=args.play, generator_settings=settings,
                 view=args.view)
    )
