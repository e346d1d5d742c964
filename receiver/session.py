"""One Session per peer: decodes its frames, queues its utterances, renders them in order, acks."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Callable

from aiortc import RTCDataChannel, RTCPeerConnection

from model import Generator
from protocol import codec, textpack
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Outcome, ProtocolError
from protocol.rtc import StunCounter, dtls_counters
from receiver.bitrate import BitrateMeter, Link
from receiver.calls import Calls
from receiver.config import ReceiverConfig
from receiver.gallery import Gallery, UploadBudget, Uploads
from receiver.identities import SenderKeys
from receiver.recorder import SessionRecorder
from receiver.render_log import RenderLog
from receiver.rendering import Live, Rendered, Rendering, _Job
from receiver.worker import GenerationWorker

logger = logging.getLogger(__name__)

STYLE_CHUNKS_PER_SECOND = 128  # StyleImage frames a session may send per second (4 MiB/s of 32 KiB chunks)
QUIET_DEAD_AFTER = 60.0  # seconds of silence a quiet sender's session survives (ICE consent still runs)


def loggable(text: str, limit: int = 200) -> str:
    """A peer's text made safe for one log line: control characters (newlines included, which could
    forge a line) shown as their escapes, cut to ``limit`` characters."""
    import unicodedata

    out = "".join(ch if unicodedata.category(ch)[0] != "C" else ch.encode("unicode_escape").decode("ascii") for ch in text[:limit])
    return out + ("..." if len(text) > limit else "")


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class Session(Rendering):
    """One peer's call: its channel, its messages, its queue of utterances (rendered by ``Rendering``)."""

    def __init__(
        self,
        session_id: str,
        pc: RTCPeerConnection,
        *,
        config: ReceiverConfig,
        generator: Generator,
        worker: GenerationWorker,
        calls: Calls | None = None,
        render_log: RenderLog,
        keys: SenderKeys | None = None,
        upload_budget: UploadBudget | None = None,
        gallery: Gallery,
        sinks: list[Callable[[Rendered], None]],
        live: list[Callable[[Live], None]] | None = None,
        on_hello: Callable[[Session, str], str | None],
        on_closed: Callable[[Session], None],
        dead_after: float = 10.0,
        bound_sender_id: str | None = None,
    ) -> None:
        self.id = session_id
        self.pc = pc
        self.config = config
        self.generator = generator
        self.calls = calls if calls is not None else Calls(generator, None)
        self.worker = worker
        self.render_log = render_log
        self.keys = keys if keys is not None else SenderKeys(None)
        self.proven = False  # its Hello proved the sender id (its secret, or a per-sender token)
        self.gallery = gallery
        self.sinks = sinks
        self.live = live if live is not None else []
        self._on_hello_cb = on_hello
        self._on_closed_cb = on_closed
        self.dead_after = dead_after
        self.quiet = False  # the sender asked for no QUEUED acks and idle-only pings (codec.QUIET)
        self.ack_ranges = False  # ... and takes RENDERED acks for runs of seqs (codec.ACK_RANGES)
        self._history = textpack.History()  # the texts decoded so far (textpack.STREAM packs against them)
        self._held_acks: list | None = None  # [first seq, last seq, media seconds, render ms] not acked yet
        self._hold_acks = True  # off from a ping until the next utterance
        self._ack_timer: asyncio.TimerHandle | None = None
        self.bound_sender_id = bound_sender_id  # set when the token belongs to one sender (--tokens)
        self.folder = config.out_dir / session_id
        self.meter = BitrateMeter(session_id)
        self.stun = StunCounter()  # the connection's STUN datagrams (the meter counts all of the call)
        self.stun.attach(pc)
        self.uploads = Uploads(self.folder / "styles", config.limits.max_style_image_bytes, budget=upload_budget)
        self._style_rate = TokenBucket(STYLE_CHUNKS_PER_SECOND, 2 * STYLE_CHUNKS_PER_SECOND)
        self.recorder = SessionRecorder(self.folder) if config.record else None
        self.sender_id: str | None = None
        self.channel: RTCDataChannel | None = None
        self.inbox: asyncio.Queue[_Job] = asyncio.Queue(maxsize=config.queue_size)
        self.closed = asyncio.Event()
        self._queued: set[int] = set()
        self._rate = TokenBucket(config.max_utterances_per_second, config.queue_size)
        # (seq, code) of an utterance refused with "retry later": later ones wait for it, since the
        # render log keeps only the last rendered seq and a resent earlier one would read as a duplicate
        self._held: tuple[int, int] | None = None
        self._last_heard = time.monotonic()
        self._face: dict | None = None  # the call's face as last journaled
        self._storing: dict[str, asyncio.Task] = {}  # style images being decoded and stored, by id
        self._log = None
        self._inflight: set[asyncio.Task] = set()  # renders that run to the end even if the session closes
        self._abandon = False  # set on receiver shutdown: renders stop at their next chunk
        loop = self._loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._consume(), name=f"session-{session_id}-consume"),
            loop.create_task(self._watchdog(), name=f"session-{session_id}-watchdog"),
        ]

    # -------------------------------------------------------------------------------- channel

    def attach(self, channel: RTCDataChannel) -> None:
        if self.channel is not None or channel.label != codec.CHANNEL_LABEL:
            logger.warning("session %s: refusing extra data channel %r", self.id, channel.label)
            channel.close()
            return
        self.channel = channel
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._schedule_close("data channel closed"))
        logger.info("session %s: data channel open", self.id)

    def _on_message(self, frame: bytes | str) -> None:
        """Data-channel handler: never raises; every bad frame is answered with an Error."""
        self._last_heard = time.monotonic()
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode("utf-8", "replace"))
        try:
            envelope = codec.decode(frame, self.config.limits, history=self._history)
            kind = envelope.WhichOneof("body")
            self.meter.message_received(size, utterance=kind == "utterance")
            handler = getattr(self, f"_on_{kind}", None)
            if handler is None:
                raise ProtocolError(f"{kind} is not something a sender sends", Code.UNEXPECTED)
            handler(getattr(envelope, kind))
        except ProtocolError as exc:
            if not isinstance(frame, bytes) or exc.code in (Code.BAD_FRAME, Code.TOO_LARGE):
                self.meter.message_received(size)
            self._refuse(exc)
        except Exception:  # a bug of ours: tell the sender, keep serving
            logger.exception("session %s: handling a frame failed", self.id)
            self._send(codec.error(Code.INTERNAL, "internal error while handling the message"))

    def _refuse(self, exc: ProtocolError) -> None:
        """Tell the sender why (an ``Error``), and log and journal it."""
        logger.info("session %s: %s (%s)", self.id, exc.reason, codec.code_name(exc.code))
        self._journal("error", code=codec.code_name(exc.code), reason=exc.reason, seq=exc.seq)
        self._send(codec.error_from(exc))

    def _on_hello(self, msg: pb.Hello) -> None:
        if self.bound_sender_id is not None and msg.sender_id != self.bound_sender_id:
            raise ProtocolError(
                f"this token belongs to sender {self.bound_sender_id!r}, not {msg.sender_id!r}",
                Code.UNEXPECTED,
            )
        if self.sender_id is not None and self.sender_id != msg.sender_id:
            raise ProtocolError("sender id cannot change within a session", Code.UNEXPECTED)
        secret = bytes(msg.secret)
        if self.bound_sender_id is None:  # a per-sender token proves the id by itself
            refusal = self.keys.check(msg.sender_id, secret)
            if refusal is not None:
                self._journal("refused_hello", sender_id=msg.sender_id, reason=refusal)
                raise ProtocolError(refusal, Code.IDENTITY)
        self.proven = self.bound_sender_id is not None or bool(secret)
        if self.sender_id is None:
            refusal = self._on_hello_cb(self, msg.sender_id)  # the app replaces older sessions of the sender
            if refusal is not None:
                raise ProtocolError(refusal, Code.IDENTITY)
        self.sender_id = msg.sender_id
        self.uploads.sender = msg.sender_id
        if codec.QUIET in msg.capabilities:
            self.quiet = True  # its pings come only when the link is idle: tolerate longer silences
            self.dead_after = max(self.dead_after, QUIET_DEAD_AFTER)
            self.ack_ranges = codec.ACK_RANGES in msg.capabilities  # its acks may be held and merged
        self._update_wire()
        self.meter.mark_setup()  # what the connection cost before the first message
        last = self.render_log.last(msg.sender_id)
        logger.info("session %s: hello from %s (rendered up to #%d)", self.id, msg.sender_id, last)
        self._journal("hello", sender_id=msg.sender_id, capabilities=list(msg.capabilities))
        self._send(
            codec.welcome(
                self.id,
                last_rendered_seq=last,
                window=self.config.queue_size,
                model=self.generator.name,
                limits=self.config.limits,
                capabilities=codec.capabilities(),
            )
        )

    def _on_utterance(self, msg: pb.Utterance) -> None:
        self._hold_acks = True  # the sender is talking again: its acks may wait for company
        if self.sender_id is None:
            raise ProtocolError("send Hello before utterances", Code.UNEXPECTED, msg.seq)
        if msg.seq <= self.render_log.last(self.sender_id):
            self._answer_settled(msg.seq)
            return
        if msg.seq in self._queued:
            self._send(codec.ack(msg.seq, Outcome.QUEUED, queue_depth=self.inbox.qsize()))
            return
        if self._held is not None:
            held, code = self._held
            if msg.seq > held:  # accepting it first would break the order renders are logged in
                raise ProtocolError(f"#{held} was refused for now: send it again first", code, msg.seq)
            if msg.seq == held:
                self._held = None  # #held is back: whatever happens to it now decides
        expected = self.render_log.expected(self.sender_id)
        if msg.seq > expected:  # nothing between is marked, rendered or skipped: the sender renumbers
            raise ProtocolError(f"seq {msg.seq} skips ahead: the next one is #{expected} (numbers go up by one; "
                                f"#{self.render_log.last(self.sender_id)} and below are settled)", Code.SEQ_GAP, msg.seq)
        if msg.style_image_id and self._style_path(msg.style_image_id) is None and msg.style_image_id not in self._storing:
            known = ", ".join(self.gallery.ids()[:10]) or "none"
            raise self._settled_refusal(ProtocolError(
                f"unknown style image {msg.style_image_id!r} (gallery: {known}; or upload it first)",
                Code.UNKNOWN_STYLE,
                msg.seq,
            ), new=msg.seq == expected)
        if not self._rate.take():
            self._held = (msg.seq, Code.RATE_LIMITED)
            raise ProtocolError(
                f"more than {self.config.max_utterances_per_second:g} utterances per second",
                Code.RATE_LIMITED,
                msg.seq,
            )
        try:
            self.inbox.put_nowait(_Job(msg, time.monotonic()))
        except asyncio.QueueFull:
            self._held = (msg.seq, Code.QUEUE_FULL)
            raise ProtocolError(
                f"queue of {self.config.queue_size} utterances is full; wait for acks",
                Code.QUEUE_FULL,
                msg.seq,
            ) from None
        self._queued.add(msg.seq)
        self.render_log.accept(self.sender_id, msg.seq)
        self._journal("utterance", seq=msg.seq, caption=msg.caption, text=msg.text,
                      style_image_id=msg.style_image_id, sent_unix_ms=msg.sent_unix_ms or None)
        if not self.quiet:  # a quiet sender learns of its utterance when it is rendered
            self._send(codec.ack(msg.seq, Outcome.QUEUED, queue_depth=self.inbox.qsize() - 1))

    def _on_style_image(self, msg: pb.StyleImage) -> None:
        if self.sender_id is None:
            raise ProtocolError("send Hello before style images", Code.UNEXPECTED)
        if self.gallery.get(msg.id) is not None:
            raise ProtocolError(f"style image id {msg.id!r} is taken by the gallery", Code.BAD_MESSAGE)
        if not self._style_rate.take():
            self.uploads.drop(msg.id)  # a chunk lost: the upload starts again from its first
            raise ProtocolError(f"style image {msg.id!r}: more than {STYLE_CHUNKS_PER_SECOND} chunks per second; "
                                "send it again from its first chunk, slower", Code.RATE_LIMITED)
        data = self.uploads.assemble(msg)  # header checks here; the decode runs off the event loop
        if data is not None:
            previous = self._storing.get(msg.id)
            task = asyncio.get_running_loop().create_task(self._store_style(msg.id, data, previous))
            self._storing[msg.id] = task

    async def _store_style(self, image_id: str, data: bytes, previous: asyncio.Task | None) -> Path | None:
        """Decode and keep an uploaded style image in a worker thread (a 16-Mpixel decode would stall
        every other session's messages); an Error tells the sender when it is not an image."""
        if previous is not None:  # the same id uploaded again: in order
            await asyncio.gather(previous, return_exceptions=True)
        try:
            path = await asyncio.get_running_loop().run_in_executor(None, self.uploads.store, image_id, data)
        except ProtocolError as exc:
            self._refuse(exc)
            return None
        finally:
            if self._storing.get(image_id) is asyncio.current_task():
                del self._storing[image_id]
        logger.info("session %s: style image %r stored at %s", self.id, image_id, path)
        self._journal("style_image", id=image_id, path=str(path))
        return path

    def _on_ping(self, msg: pb.Ping) -> None:
        # a quiet sender pings when it waits for its acks (or heard nothing for a while): send the held
        # ones, and those of what is still rendering as soon as it is done, until it says more
        self._flush_acks()
        self._hold_acks = False
        self._send(codec.pong(msg))

    def _on_pong(self, msg: pb.Pong) -> None:
        pass

    def _on_bye(self, msg: pb.Bye) -> None:
        self._schedule_close(f"sender said bye: {loggable(msg.reason) or 'no reason'}")

    def _style_path(self, image_id: str) -> Path | None:
        return self.uploads.get(image_id) or self.gallery.get(image_id)

    def _send(self, envelope: pb.Envelope) -> None:
        if self.channel is None or self.channel.readyState != "open":
            return
        frame = envelope.SerializeToString()
        try:
            self.channel.send(frame)
        except Exception as exc:  # closing underneath us
            logger.debug("session %s: send failed: %s", self.id, exc)
            return
        self.meter.message_sent(len(frame))

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.dead_after / 4))
            silent = time.monotonic() - self._last_heard
            if silent > self.dead_after and not self._alive_anyway():
                self._schedule_close(f"sender silent for {silent:.1f} s")
                return

    def _alive_anyway(self) -> bool:
        """A quiet peer is still there while its utterances are queued or rendering (never thrown away
        for quiet), or while its ICE consent holds (RFC 7675: aioice checks it about every 5 s and
        fails the connection after 6 misses), which is all a standard WebRTC peer owes us; pings are
        for peers that want to know the receiver is there."""
        return bool(self._queued) or self.pc.connectionState == "connected"

    # --------------------------------------------------------------------------------- closing

    def _schedule_close(self, reason: str) -> None:
        if not self.closed.is_set():
            asyncio.get_running_loop().create_task(self.close(reason))

    async def close(self, reason: str = "closed", *, finish: bool = True) -> None:
        """End the session. A render in progress runs to the end and lands in the recording (and the
        render log, so the sender's resend after a reconnect is acked as a duplicate); ``finish=False``
        (receiver shutdown) stops it at its next chunk instead: the sender's outbox resends it."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._flush_acks()
        self._abandon = not finish
        logger.info("session %s: closing (%s)", self.id, reason)
        if reason.startswith("replaced") and self.channel is not None:
            self._send(codec.bye(reason))
        current = asyncio.current_task()
        for task in self._storing.values():
            task.cancel()
        self.uploads.close()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        self._update_wire()
        self.meter.end()
        await self.pc.close()
        await asyncio.gather(*self._inflight, return_exceptions=True)
        if self.recorder is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.recorder.close)
        if self.meter.messages_received:
            self.meter.write(self.folder / "bitrate.json")
            logger.info("%s", self.meter.summary())
        self._journal("closed", reason=reason)
        if self._log is not None:
            self._log.close()
        self._on_closed_cb(self)

    def _update_wire(self) -> None:
        """The meter's link counters: DTLS datagrams from the transport, STUN from ``self.stun``."""
        dtls = dtls_counters(self.pc)
        if dtls is None:
            return
        stun = self.stun
        self.meter.link(Link(dtls.bytes_received, dtls.packets_received, stun.received_bytes, stun.received_packets),
                        Link(dtls.bytes_sent, dtls.packets_sent, stun.sent_bytes, stun.sent_packets))

    def _journal(self, event: str, **fields) -> None:
        """Append to the session file (session.jsonl): what arrived, what was made, what failed."""
        if not self.config.record or (self._log is not None and self._log.closed):
            return
        if self._log is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._log = (self.folder / "session.jsonl").open("a", encoding="utf-8")
        record = {"t": round(time.time(), 3), "event": event, **fields}
        self._log.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._log.flush()
