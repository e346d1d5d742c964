"""The text link measured: real senders speak a script over loopback WebRTC to a receiver here.

For each :class:`LinkOption` a ``textcall send`` process (the real sender, as a user runs it) says
the script at a person's pace (``--pace WPM``) to one receiver in this process (stub generator).
A :class:`~receiver.report.wiretap.WireTap` records every datagram of the receiver's side of each
connection, which sees both directions: what it sent and what it received. Bytes are split into

- setup: before the sender's Hello arrived (ICE checks, DTLS handshake, SCTP association, DCEP),
- steady state: from Hello to Bye, the cost of talking, reported per second of speech,
- close: Bye and the SCTP/DTLS teardown after it,

and the steady state is broken down by what each datagram carried (utterance, ack, ping, pong,
SACK, ...). Payload bytes are the protobuf frames the receiver's session counted.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from receiver.report.model import TextLinkResult
from receiver.report.wiretap import WireTap
from receiver.tokens import new_token

logger = logging.getLogger(__name__)

WPM = 150.0


@dataclass(frozen=True)
class LinkOption:
    key: str
    label: str
    batch_seconds: float = 0.0
    compress: bool = False
    quiet: bool = False
    preset: str = ""  # "conversational" / "economy": textcall send's own presets
    text_coder: str = ""  # "deflate": textcall send --text-coder deflate (default: its own, PPM)

    def sender_args(self) -> list[str]:
        args = ["--text-coder", self.text_coder] if self.text_coder else []
        if self.preset:
            return [f"--{self.preset}"] + args
        if self.batch_seconds:
            args += ["--batch", f"{self.batch_seconds:g}"]
        if self.compress:
            args.append("--compress")
        if self.quiet:
            args.append("--quiet-heartbeat")
        return args


OPTIONS = (
    LinkOption("conversational", "conversational: one message per line, PPM text, quiet heartbeat, merged acks",
               compress=True, quiet=True, preset="conversational"),
    LinkOption("economy", "economy: lines batched up to 8 s, PPM text, quiet heartbeat, merged acks",
               batch_seconds=8, compress=True, quiet=True, preset="economy"),
    LinkOption("sentence", "one message per sentence, plain text, ping every 2 s (textcall 0.1)"),
    LinkOption("economy-deflate", "economy with DEFLATE text (textcall before 2026-12-07)",
               batch_seconds=8, compress=True, quiet=True, preset="economy", text_coder="deflate"),
    LinkOption("sentence-deflate", "one message per sentence, DEFLATE + dictionary", compress=True,
               text_coder="deflate"),
    LinkOption("sentence-quiet", "one message per sentence, quiet heartbeat", quiet=True),
    LinkOption("batch15", "15 s batches, plain text, ping every 2 s", batch_seconds=15),
    LinkOption("batch15-ppm-quiet", "15 s batches, PPM text, quiet heartbeat",
               batch_seconds=15, compress=True, quiet=True),
    LinkOption("batch10-ppm-quiet", "10 s batches, PPM text, quiet heartbeat",
               batch_seconds=10, compress=True, quiet=True),
    LinkOption("batch20-ppm-quiet", "20 s batches, PPM text, quiet heartbeat",
               batch_seconds=20, compress=True, quiet=True),
)
QUICK_OPTIONS = ("conversational", "economy", "economy-deflate", "sentence")
BAR_OPTION = "economy"
# the bars of issue 27, all-in UDP each way over the call (setup apart)
CONVERSATIONAL_BAR_BPS, CONVERSATIONAL_LATENCY_S = 400.0, 2.0  # mean added latency
ECONOMY_BAR_BPS, ECONOMY_PAYLOAD_BPS, ECONOMY_WAIT_S = 250.0, 50.0, 8.0  # the longest wait


def speaking_seconds(lines: list[tuple[str, str, str]], wpm: float) -> float:
    """The rule ``send --pace`` follows (sender/speaker.py): words / wpm per line, at least one word."""
    return sum(max(1, len(text.split())) for _, text, _ in lines) * 60.0 / wpm


def write_script(lines: list[tuple[str, str, str]], path: Path) -> Path:
    rows = [f"{c} | {t} | {s}" for c, t, s in lines]
    path.write_text("# caption | speech text | style id\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@dataclass
class _Run:
    option: LinkOption
    sessions: list = field(default_factory=list)
    output: list[str] = field(default_factory=list)
    media_seconds: float = 0.0
    clips: int = 0
    rendered: list = field(default_factory=list)  # (seq, Clip)
    exit_code: int | None = None


async def measure_text_link(
    lines: list[tuple[str, str, str]],
    options: list[LinkOption],
    *,
    work_dir: Path,
    wpm: float = WPM,
    progress=None,
) -> tuple[list[TextLinkResult], dict[str, list]]:
    """Speak ``lines`` once per option, all options at the same time (each its own connection).
    Returns the results and, per option key, the clips the receiver rendered (in order)."""
    from receiver.state import SESSIONS
    from receiver.config import ReceiverConfig
    from receiver.serve import start

    if not lines:
        raise ValueError("the script has no lines")
    work_dir.mkdir(parents=True, exist_ok=True)
    script = write_script(lines, work_dir / "script.txt")
    seconds = speaking_seconds(lines, wpm)
    token = new_token()
    runs = {f"report-{o.key}": _Run(o) for o in options}

    def sink(rendered) -> None:
        run = runs.get(rendered.sender_id)
        if run is not None:
            run.media_seconds += rendered.clip.seconds
            run.clips += 1
            run.rendered.append((rendered.seq, rendered.clip))

    config = ReceiverConfig(tokens=frozenset({token}), out_dir=work_dir / "sessions", port=0, loopback=True,
                            max_peers=max(16, len(options)), max_utterances_per_second=50.0)
    with WireTap() as tap:
        runner, url = await start(config, sinks=[sink])
        stop = asyncio.Event()

        async def watch_sessions() -> None:  # sessions leave the app when they close: keep them
            seen: set[int] = set()
            while not stop.is_set():
                for session in list(runner.app[SESSIONS].values()):
                    run = runs.get(session.sender_id or "")
                    if run is not None and id(session) not in seen and session.pc.sctp is not None:
                        seen.add(id(session))
                        run.sessions.append((session, tap.log_of(session.pc)))
                await asyncio.sleep(0.05)

        watcher = asyncio.get_running_loop().create_task(watch_sessions())
        try:
            await asyncio.gather(*(_send(url, token, sender_id, run, script, wpm, seconds, progress)
                                   for sender_id, run in runs.items()))
            await asyncio.sleep(0.3)  # let the sessions close and count their last bytes
        finally:
            stop.set()
            await watcher
            await runner.cleanup()
    words = sum(len(t.split()) for _, t, _ in lines)
    results = [_result(run, seconds, wpm, len(lines), words) for run in runs.values()]
    clips = {run.option.key: [clip for _, clip in sorted(run.rendered, key=lambda x: x[0])] for run in runs.values()}
    return results, clips


async def _send(url, token, sender_id, run: _Run, script: Path, wpm, seconds, progress) -> None:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sender", "send", "--receiver", url, f"--token={token}",
        "--sender-id", sender_id, "--script", str(script), "--outbox", "none", "--loopback",
        "--pace", f"{wpm:g}", "--timeout", f"{seconds + 120:.0f}", *run.option.sender_args(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env,
    )  # fmt: skip
    assert process.stdout is not None
    async for raw in process.stdout:
        line = raw.decode(errors="replace").rstrip()
        run.output.append(line)
        logger.debug("[%s] %s", sender_id, line)
        if progress is not None and " rendered" in line:
            progress()
    run.exit_code = await process.wait()
    if run.exit_code != 0:
        tail = "\n".join(run.output[-8:])
        raise RuntimeError(f"sender {sender_id} exited with {run.exit_code}:\n{tail}")


def _result(run: _Run, seconds: float, wpm: float, lines: int, words: int) -> TextLinkResult:
    if not run.sessions:
        raise RuntimeError(f"option {run.option.key}: no session reached the receiver")
    if len(run.sessions) > 1:
        logger.warning("option %s reconnected %d times; counting all connections",
                       run.option.key, len(run.sessions) - 1)
    up, down = _Split(), _Split()
    payload_up = payload_down = messages_up = utterance_payload = 0
    stun_up = stun_down = 0
    period_up = period_down = 0
    period_seconds = call_seconds = 0.0
    udp_up = udp_down = udp_setup_up = udp_setup_down = stun_udp_up = stun_udp_down = 0
    for session, log in run.sessions:
        hello = next((d.t for d in log.datagrams if d.direction == "rx" and d.label == "hello"), None)
        bye = next((d.t for d in log.datagrams if d.direction == "rx" and d.label == "bye"), float("inf"))
        if hello is None:
            raise RuntimeError(f"option {run.option.key}: no Hello seen on the wire")
        up.add(log, "rx", hello, bye)  # the receiver receives what the sender sends
        down.add(log, "tx", hello, bye)
        end = bye if bye != float("inf") else max(d.t for d in log.datagrams + log.stun)
        call_seconds += end - hello
        udp_up += log.udp("rx", hello, bye)
        udp_down += log.udp("tx", hello, bye)
        udp_setup_up += log.udp("rx", until=hello)
        udp_setup_down += log.udp("tx", until=hello)
        stun_udp_up += log.stun_bytes("rx", hello, bye)
        stun_udp_down += log.stun_bytes("tx", hello, bye)
        # steady state: from the first utterance to the last, whole periods of talking
        arrivals = [d.t for d in log.datagrams if d.direction == "rx" and d.label == "utterance"]
        if len(arrivals) >= 2:
            period_up += log.bytes("rx", since=arrivals[0], until=arrivals[-1])
            period_down += log.bytes("tx", since=arrivals[0], until=arrivals[-1])
            period_seconds += arrivals[-1] - arrivals[0]
        payload_up += session.meter.payload_bytes_received
        payload_down += session.meter.payload_bytes_sent
        messages_up += session.meter.messages_received
        utterance_payload += session.meter.utterance_payload_bytes
        stun_up += log.stun_bytes("rx", headers=False)
        stun_down += log.stun_bytes("tx", headers=False)
    latency = _added_latency(run.output)
    return TextLinkResult(
        key=run.option.key,
        label=run.option.label,
        batch_seconds=run.option.batch_seconds,
        compress=run.option.compress,
        quiet=run.option.quiet,
        wpm=wpm,
        lines=lines,
        words=words,
        speaking_seconds=round(seconds, 3),
        media_seconds=round(run.media_seconds, 3),
        clips=run.clips,
        messages_up=messages_up,
        payload_up_bytes=payload_up,
        payload_down_bytes=payload_down,
        utterance_payload_bytes=utterance_payload,
        wire_up_bytes=up.steady,
        wire_down_bytes=down.steady,
        setup_up_bytes=up.setup,
        setup_down_bytes=down.setup,
        close_up_bytes=up.close,
        close_down_bytes=down.close,
        breakdown_up=up.breakdown,
        breakdown_down=down.breakdown,
        stun_up_bytes=stun_up,
        stun_down_bytes=stun_down,
        steady_up_bytes=period_up,
        steady_down_bytes=period_down,
        steady_seconds=round(period_seconds, 3),
        call_seconds=round(call_seconds, 3),
        udp_up_bytes=udp_up,
        udp_down_bytes=udp_down,
        udp_setup_up_bytes=udp_setup_up,
        udp_setup_down_bytes=udp_setup_down,
        stun_udp_up_bytes=stun_udp_up,
        stun_udp_down_bytes=stun_udp_down,
        added_latency_mean_s=latency[0],
        added_latency_max_s=latency[1],
    )


def _added_latency(output: list[str]) -> tuple[float, float]:
    """(mean, max) seconds batching added before lines were sent, from ``textcall send``'s last words."""
    for line in reversed(output):
        found = re.search(r"added latency: mean ([0-9.]+) s, max ([0-9.]+) s", line)
        if found:
            return float(found.group(1)), float(found.group(2))
    raise RuntimeError("the sender did not report its added latency")


class _Split:
    def __init__(self) -> None:
        self.setup = self.steady = self.close = 0
        self.breakdown: dict[str, dict[str, int]] = {}

    def add(self, log, direction: str, hello: float, bye: float) -> None:
        self.setup += log.bytes(direction, until=hello)
        self.steady += log.bytes(direction, since=hello, until=bye)
        self.close += log.bytes(direction, since=bye)
        for d in log.datagrams:
            if d.direction == direction and hello <= d.t < bye:
                entry = self.breakdown.setdefault(d.label, {"count": 0, "bytes": 0})
                entry["count"] += 1
                entry["bytes"] += d.size
