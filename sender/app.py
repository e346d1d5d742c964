"""``textcall send``: interactive prompt, script, or a single utterance."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import hashlib
import json
import logging
import re
import socket
import sys
from dataclasses import astuple, dataclass, field
from pathlib import Path

from protocol.codec import ProtocolError
from protocol.ice import ice_servers_from_args
from sender.client import (
    Connected,
    Disconnected,
    Event,
    FatalError,
    Queued,
    ReceiverError,
    Refused,
    Rendered,
    Sender,
    SenderConfig,
    Waiting,
)
from sender.identity import default_secret_file, load_secret, state_dir

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Line:
    caption: str = ""
    text: str = ""
    style_image_id: str = ""


def parse_line(line: str) -> Line:
    """``speech text`` or ``caption | speech text | style id`` (parts may be empty)."""
    parts = [part.strip() for part in line.split("|")]
    if len(parts) == 1:
        return Line(text=parts[0])
    if len(parts) > 3:
        raise ValueError("use at most two '|': caption | speech text | style id")
    parts += [""] * (3 - len(parts))
    return Line(caption=parts[0], text=parts[1], style_image_id=parts[2])


def read_script(path: Path) -> list[Line]:
    lines = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            lines.append(parse_line(stripped))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return lines


def default_sender_id() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "user"
    raw = f"{user}-{socket.gethostname()}"
    return re.sub(r"[^A-Za-z0-9_.-]", "_", raw)[:64] or "sender"


def default_outbox(sender_id: str) -> Path:
    return state_dir() / f"outbox-{sender_id}.jsonl"


def image_id_for(path: Path) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem)[:64] or "image"


ECONOMY_BATCH_S = 8.0  # --economy: no line waits longer than this before it is sent


def _mode(args: argparse.Namespace) -> str | None:
    """The link preset asked for: "conversational", "economy" (--low-bitrate too) or None."""
    if getattr(args, "economy", False) or getattr(args, "low_bitrate", False):
        return "economy"
    return "conversational" if getattr(args, "conversational", False) else None


@dataclass(frozen=True)
class SendOptions:
    config: SenderConfig
    script: list[Line] | None = None
    single: Line | None = None
    style_images: dict[str, bytes] = field(default_factory=dict)
    timeout: float = 600.0
    batch_seconds: float = 0.0  # join lines within this many seconds into one utterance (0: off)
    pace_wpm: float = 0.0  # say a script at this many words per minute (0: all at once)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> SendOptions:
        sender_id = args.sender_id or default_sender_id()
        outbox = None if args.outbox == "none" else Path(args.outbox or default_outbox(sender_id))
        secret_file = getattr(args, "secret_file", None)
        secret = None if secret_file == "none" else load_secret(Path(secret_file or default_secret_file(sender_id)))
        config = SenderConfig(
            receiver_url=args.receiver,
            token=args.token,
            sender_id=sender_id,
            outbox_path=outbox,
            secret=secret,
            ice_servers=ice_servers_from_args(args),
            tls_ca=Path(args.tls_ca) if args.tls_ca else None,
            compress=bool(getattr(args, "compress", False) or _mode(args)),
            text_coder=getattr(args, "text_coder", "ppm"),
            quiet=bool(getattr(args, "quiet_heartbeat", False) or _mode(args)),
            loopback=bool(args.loopback),
        )
        script = read_script(Path(args.script)) if args.script else None
        single = None
        if args.once or args.text is not None or args.caption or args.style:
            if script is not None:
                raise ValueError("--caption/--style/--once apply to a single utterance, not --script")
            single = Line(args.caption or "", args.text or "", args.style or "")
        images = {}
        if args.style_image:
            path = Path(args.style_image)
            images[image_id_for(path)] = path.read_bytes()
            if single is not None and not single.style_image_id:  # one utterance and one picture: the picture is its face
                single = Line(single.caption, single.text, image_id_for(path))
        batch = getattr(args, "batch", 0.0) or (ECONOMY_BATCH_S if _mode(args) == "economy" else 0.0)
        pace = getattr(args, "pace", 0.0) or 0.0
        if batch < 0 or pace < 0:
            raise ValueError("--batch and --pace must not be negative")
        if pace and script is None:
            raise ValueError("--pace needs --script")
        return cls(config, script, single, images, args.timeout, batch, pace)


class Console:
    """Prints sender events for a person."""

    def __init__(self, sender: Sender, out=sys.stdout) -> None:
        self.sender = sender
        self.out = out
        self.rendered = 0
        self.refused = 0
        self._last_waiting: tuple[int, int] | None = None

    def show(self, event: Event) -> None:
        rtt = self.sender.counters.rtt_ms
        rtt_text = f", rtt {rtt:.0f} ms" if rtt is not None else ""
        match event:
            case Connected():
                again = f", {event.pending} utterance(s) to send" if event.pending else ""
                self._print(
                    f"connected: session {event.session_id}, model {event.model}, "
                    f"window {event.window}{again}"
                )
            case Queued():
                logger.info("#%d queued (%d ahead)", event.seq, event.queue_depth)
            case Rendered(duplicate=True):
                self.rendered += 1
                self._print(f"#{event.seq} was already rendered before a reconnect")
            case Rendered():
                self.rendered += 1
                self._print(
                    f"#{event.seq} rendered: {event.media_seconds:.2f} s of video in "
                    f"{event.render_ms / 1000:.2f} s (ack after {event.latency_s:.2f} s{rtt_text})"
                )
            case Refused():
                self.refused += 1
                self._print(f"#{event.seq} refused by the receiver: {event.code}: {event.reason}")
            case ReceiverError(retry_in=None):
                self._print(f"receiver error: {event.code}: {event.reason}")
            case ReceiverError():  # throttled, not lost: the client resends it
                self._print(f"receiver asks to slow down ({event.code}: {event.reason}); resending in {event.retry_in:g} s")
            case Disconnected(retry_in=None):
                self._print(f"disconnected: {event.reason}")
            case Disconnected():
                self._print(f"disconnected: {event.reason}; reconnecting in {event.retry_in:.1f} s")
            case Waiting():
                key = (event.in_flight, event.pending)
                if key != self._last_waiting:
                    self._print(
                        f"waiting: {event.in_flight} in flight fill the receiver's window, "
                        f"{event.pending} queued behind"
                    )
                self._last_waiting = key

    async def run(self) -> None:
        while True:
            self.show(await self.sender.events.get())

    def summary(self) -> str:
        c = self.sender.counters
        return (
            f"{self.rendered} rendered, {self.refused} refused, {len(self.sender.outbox)} unsent; "
            f"payload {c.payload_bytes_sent} B sent / {c.payload_bytes_received} B received, "
            f"wire (DTLS) {c.wire_bytes_sent} B sent / {c.wire_bytes_received} B received"
        )

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


async def run_send(options: SendOptions) -> int:
    sender = Sender(options.config)
    console = Console(sender)
    printer = asyncio.get_running_loop().create_task(console.run())
    try:
        for image_id, data in options.style_images.items():
            sender.upload_style_image(image_id, data)
            console._print(f"style image {image_id!r} ({len(data)} bytes) will be uploaded")
        await sender.start()
        if options.script is not None and (options.pace_wpm or options.batch_seconds):
            await _speak(sender, console, options)  # paced and/or batched: no resume bookkeeping
            ok = await sender.drain(options.timeout)
        elif options.script is not None:
            # A restarted script resumes: lines an earlier run queued are in the outbox (or done).
            key = script_key(options.script)
            start = sender.outbox.progress(key)
            if start:
                console._print(f"resuming the script: {start} of {len(options.script)} line(s) were "
                               f"queued by an earlier run, {len(sender.outbox)} still unacked")
            for number, line in enumerate(options.script[start:], start + 1):
                _say(sender, console, line, source=f"{key}:{number}")
            ok = await sender.drain(options.timeout)
        elif options.single is not None:
            _say(sender, console, options.single)
            ok = await sender.drain(options.timeout)
        else:
            ok = await _interactive(sender, console, options)
        await asyncio.sleep(0)  # let the printer show the last events
        while not sender.events.empty():
            console.show(sender.events.get_nowait())
        if sender.fatal is not None:
            console._print(f"giving up: {sender.fatal}")
            return 3
        if not ok:
            console._print(f"timed out with {len(sender.outbox)} utterance(s) not yet rendered")
        return 0 if ok and console.refused == 0 else 1
    finally:
        printer.cancel()
        await sender.close()
        console._print(console.summary())


async def _speak(sender: Sender, console: Console, options: SendOptions) -> None:
    from sender.batcher import BatchConfig, Batcher
    from sender.speaker import speak

    batcher = Batcher(sender, BatchConfig(options.batch_seconds)) if options.batch_seconds else None
    lines = [(line.caption, line.text, line.style_image_id) for line in options.script or ()]
    if options.pace_wpm:
        await speak(sender, lines, wpm=options.pace_wpm, batcher=batcher,
                    on_error=lambda exc: console._print(f"not sent: {exc}"))
    else:
        for caption, text, style in lines:
            try:
                batcher.add(caption=caption, text=text, style_image_id=style)
            except (ProtocolError, FatalError) as exc:
                console._print(f"not sent: {exc}")
        batcher.flush()
    waits = batcher.waits if batcher is not None else [0.0] * len(lines)
    if waits:  # what batching added before each line went out (`textcall report` reads this line)
        console._print(f"added latency: mean {sum(waits) / len(waits):.2f} s, max {max(waits):.2f} s "
                       f"over {len(waits)} lines")


def script_key(lines: list[Line]) -> str:
    """Names a script by its content, so a restart with the same script resumes it."""
    digest = hashlib.sha256(json.dumps([astuple(line) for line in lines]).encode()).hexdigest()
    return f"script-{digest[:16]}"


def _say(sender: Sender, console: Console, line: Line, source: str = "") -> None:
    try:
        item = sender.say(
            caption=line.caption, text=line.text, style_image_id=line.style_image_id, source=source
        )
        logger.info("#%d queued locally", item.seq)
    except (ProtocolError, FatalError) as exc:
        console._print(f"not sent: {exc}")


async def _interactive(sender: Sender, console: Console, options: SendOptions) -> bool:
    loop = asyncio.get_running_loop()
    batcher = None
    if options.batch_seconds:
        from sender.batcher import BatchConfig, Batcher

        batcher = Batcher(sender, BatchConfig(options.batch_seconds))
        console._print(f"lines are joined and sent every {options.batch_seconds:g} s")
    console._print(
        "type speech text, or 'caption | speech text | style id'; /image PATH [ID] uploads a style "
        "image; /quit (or Ctrl-D) leaves"
    )
    while True:
        raw = await loop.run_in_executor(None, sys.stdin.readline)
        if not raw:
            break
        line = raw.strip()
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line.startswith("/image"):
            parts = line.split()
            if len(parts) not in (2, 3):
                console._print("usage: /image PATH [ID]")
                continue
            path = Path(parts[1]).expanduser()
            image_id = parts[2] if len(parts) == 3 else image_id_for(path)
            try:
                sender.upload_style_image(image_id, path.read_bytes())
                console._print(f"style image {image_id!r} uploaded; use it as '| text | {image_id}'")
            except (OSError, ProtocolError) as exc:
                console._print(f"cannot upload {path}: {exc}")
            continue
        try:
            if batcher is not None:
                parsed = parse_line(line)
                batcher.add(caption=parsed.caption, text=parsed.text, style_image_id=parsed.style_image_id)
            else:
                _say(sender, console, parse_line(line))
        except (ValueError, ProtocolError, FatalError) as exc:
            console._print(f"not sent: {exc}")
    if batcher is not None:
        batcher.flush()
    if len(sender.outbox):
        console._print(f"waiting for {len(sender.outbox)} utterance(s) to be rendered...")
    return await sender.drain(options.timeout)
