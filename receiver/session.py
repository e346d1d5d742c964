"""One Session per peer: decodes its frames, queues its utterances, renders them in order, acks."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from aiortc import RTCDataChannel, RTCPeerConnection

from model import Chunk, Clip, Generator, Request, join_chunks
from protocol import codec
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Outcome, ProtocolError
from receiver.bitrate import BitrateMeter
from receiver.calls import Calls
from receiver.config import ReceiverConfig
from receiver.gallery import Gallery, UploadBudget, Uploads
from receiver.identities import SenderKeys
from receiver.recorder import SessionRecorder
from receiver.render_log import RenderLog
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


@dataclass(frozen=True)
class Rendered:
    """What observers (tests, the viewer) learn about each finished clip."""

    session_id: str
    sender_id: str
    seq: int
    clip: Clip
    request: Request
    files: tuple[Path, ...]
    render_ms: int = 0  # from arrival to recorded clip, as acked
    first_frame_ms: int = 0  # from arrival to its first chunk out (shown live from then on)


@dataclass(frozen=True)
class Live:
    """What live observers (the player, the viewer) learn as an utterance renders: each chunk as soon
    as it is final (``chunk``), or that the utterance failed after some were shown (``failed``).
    ``arrived``: when its text arrived (``time.monotonic()``). A live chunk may never be recorded or
    acked (the render can still fail); ``Rendered`` says when the whole clip exists."""

    session_id: str
    sender_id: str
    seq: int
    request: Request
    arrived: float
    chunk: Chunk | None = None
    failed: str = ""


@dataclass
class _Job:
    utterance: pb.Utterance
    arrived: float  # time.monotonic() when the text arrived
    wall: float = 0.0  # time.time() then, for the journal

    def __post_init__(self) -> None:
        self.wall = self.wall or time.time()


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class _AlreadyRendered(Exception):
    """A resend's first rendering finished while the resend waited for the generation thread."""


class _Abandoned(Exception):
    """The receiver is shutting down: the render stopped (the sender's outbox resends it)."""


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


class Session:
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
        self.bound_sender_id = bound_sender_id  # set when the token belongs to one sender (--tokens)
        self.folder = config.out_dir / session_id
        self.meter = BitrateMeter(session_id)
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
            envelope = codec.decode(frame, self.config.limits)
            kind = envelope.WhichOneof("body")
            self.meter.received(size, utterance=kind == "utterance")
            handler = getattr(self, f"_on_{kind}", None)
            if handler is None:
                raise ProtocolError(f"{kind} is not something a sender sends", Code.UNEXPECTED)
            handler(getattr(envelope, kind))
        except ProtocolError as exc:
            if not isinstance(frame, bytes) or exc.code in (Code.BAD_FRAME, Code.TOO_LARGE):
                self.meter.received(size)
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
                      style_image_id=msg.style_image_id, sent_unix_ms=msg.sent_unix_ms)
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
        self.meter.sent(len(frame))

    # ------------------------------------------------------------------------------ rendering

    async def _consume(self) -> None:
        while True:
            job = await self.inbox.get()
            try:
                await self._render(job)
            finally:
                self._queued.discard(job.utterance.seq)

    async def _render(self, job: _Job) -> None:
        msg = job.utterance
        sender_id = self.sender_id or ""
        if msg.seq <= self.render_log.last(sender_id):  # settled by an earlier session meanwhile
            self._answer_settled(msg.seq)
            return
        pending = self._storing.get(msg.style_image_id) if msg.style_image_id else None
        if pending is not None:  # uploaded just before: its decode is still running
            await asyncio.gather(pending, return_exceptions=True)
        style = self._style_path(msg.style_image_id) if msg.style_image_id else None
        if msg.style_image_id and style is None:
            self._refuse(self._settled_refusal(ProtocolError(
                f"style image {msg.style_image_id!r} could not be stored (see the Error about it)", Code.UNKNOWN_STYLE, msg.seq)))
            return
        request = Request(
            caption=msg.caption,
            text=msg.text,
            style_image=style,
            seed=zlib.crc32(f"{sender_id}/{msg.seq}".encode()),
            session=sender_id or self.id,
        )
        call = self.calls.get(sender_id or self.id)  # the sender's person, kept across its reconnects
        # Shielded, and awaited by close(): once an utterance starts rendering it is finished, recorded
        # and marked even if the session ends meanwhile (its sender vanished, or a newer connection of
        # the same sender replaced it), so the resend after a reconnect is acked as a duplicate and
        # nothing is made twice or thrown away. Only a receiver shutdown abandons it (the sender's
        # outbox resends it to the next receiver run).
        task = asyncio.get_running_loop().create_task(self._make(job, request, call, sender_id))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)
        await asyncio.shield(task)

    async def _make(self, job: _Job, request: Request, call, sender_id: str) -> None:
        """Generate (on the generation thread, chunks to the live observers as they come), record,
        mark, tell the sinks, ack."""
        msg = job.utterance
        times: dict[str, float] = {}
        try:
            clip = await self.worker.run(self._stream, call, request, job, times)
        except asyncio.CancelledError:
            raise
        except _AlreadyRendered:  # a resend whose first rendering (an older session's) finished while it waited
            self._answer_settled(msg.seq)
            return
        except _Abandoned:
            self._journal("abandoned", seq=msg.seq, reason="receiver shutting down")
            return
        except Exception as exc:  # includes MemoryError and CUDA out-of-memory RuntimeErrors
            logger.exception("session %s: generating #%d failed", self.id, msg.seq)
            reason = f"generation failed: {type(exc).__name__}: {exc}"
            if times:  # some chunks were shown live: tell the observers the rest will not come
                self._publish(Live(self.id, sender_id, msg.seq, request, job.arrived, failed=reason))
            if self.render_log.claim(sender_id, msg.seq):  # settled as refused: a resend gets this Error again
                self.render_log.refuse(sender_id, msg.seq, Code.GENERATION_FAILED, reason)
                self.render_log.release(sender_id, msg.seq)
            self._journal("error", seq=msg.seq, code="GENERATION_FAILED", reason=reason)
            self._send(codec.error(Code.GENERATION_FAILED, reason, msg.seq))
            return
        if not self.render_log.claim(sender_id, msg.seq):  # an older session of ours got there first
            self._send(codec.ack(msg.seq, Outcome.DUPLICATE))
            return
        try:
            written: tuple[Path, ...] = ()
            if self.recorder is not None:
                written = await asyncio.get_running_loop().run_in_executor(None, self.recorder.write, msg.seq, clip)
            self.render_log.mark(sender_id, msg.seq)
            render_ms = int((time.monotonic() - job.arrived) * 1000)
            first_frame_ms = _ms(times.get("first", job.arrived) - job.arrived)
            face = clip.info.get("face")
            if face is not None and face != self._face:
                self._face = face
                store = self.calls.store(sender_id or self.id)
                self._journal("face", seq=msg.seq, **face, path=str(store / "face.png") if store else None)
            self._journal("rendered", seq=msg.seq, media_seconds=round(clip.seconds, 3),
                          render_ms=render_ms, mode=request.mode, files=[str(f) for f in written],
                          arrived=round(job.wall, 3), chunks=int(times.get("chunks", 0)),
                          first_frame_ms=first_frame_ms,
                          last_frame_ms=_ms(times.get("last", job.arrived) - job.arrived),
                          **({"session_closed": True} if self.closed.is_set() else {}))
            self.meter.rendered(clip.seconds)  # before the sinks: the viewer shows the bitrate so far
            self._update_wire()
            rendered = Rendered(self.id, sender_id, msg.seq, clip, request, written, render_ms, first_frame_ms)
            for sink in self.sinks:
                try:
                    sink(rendered)
                except Exception:
                    logger.exception("session %s: a sink failed on #%d", self.id, msg.seq)
        finally:
            self.render_log.release(sender_id, msg.seq)
        self._update_wire()
        self._send(codec.ack(msg.seq, Outcome.RENDERED, media_seconds=clip.seconds, render_ms=render_ms,
                             queue_depth=self.inbox.qsize()))

    def _answer_settled(self, seq: int) -> None:
        """A resend of a settled utterance: a duplicate when it was rendered, its Error again when refused."""
        refusal = self.render_log.refusal(self.sender_id or "", seq)
        if refusal is None:
            self._send(codec.ack(seq, Outcome.DUPLICATE))
        else:
            code, reason = refusal
            self._send(codec.error(code, f"#{seq} was refused: {reason}", seq))

    def _settled_refusal(self, exc: ProtocolError, new: bool = True) -> ProtocolError:
        """A refusal for good of an utterance this session took (or is taking, ``new``): the sender
        drops it, so its number is settled; a resend gets the same Error."""
        if new and exc.seq is not None and self.sender_id is not None:
            self.render_log.refuse(self.sender_id, exc.seq, exc.code, str(exc))
        return exc

    def _stream(self, call, request: Request, job: _Job, times: dict[str, float]) -> Clip:
        """On the generation thread: the utterance chunk by chunk, each handed to the live observers
        on the event loop as soon as it is out; returns the whole clip. ``times`` gets when the first
        and the last chunk were out (``time.monotonic()``) and how many there were."""
        loop = self._loop
        if self._abandon:
            raise _Abandoned
        if job.utterance.seq <= self.render_log.last(self.sender_id or ""):
            raise _AlreadyRendered  # it waited for the generation thread behind its first rendering
        chunks = call.stream(request)
        out: list[Chunk] = []
        for chunk in chunks:
            if self._abandon:  # the receiver is shutting down: stop (the sender's outbox resends it)
                chunks.close()  # the call's lock and state released now
                raise _Abandoned
            now = time.monotonic()
            times.setdefault("first", now)
            times["last"], times["chunks"] = now, len(out) + 1
            out.append(chunk)
            live = Live(self.id, self.sender_id or "", job.utterance.seq, request, job.arrived, chunk)
            try:
                if chunk.index == 0:
                    loop.call_soon_threadsafe(functools.partial(
                        self._journal, "first_frame", seq=job.utterance.seq, first_frame_ms=_ms(now - job.arrived)))
                loop.call_soon_threadsafe(self._publish, live)
            except RuntimeError:  # the loop is gone (shutdown): nobody is watching
                pass
        return join_chunks(out)

    def _publish(self, live: Live) -> None:
        for observer in self.live:
            try:
                observer(live)
            except Exception:
                logger.exception("session %s: a live observer failed on #%d", self.id, live.seq)

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
        sctp = self.pc.sctp
        if sctp is None:
            return
        for stats in sctp.transport._get_stats().values():  # aiortc has no public byte counter
            self.meter.wire(stats.bytesSent, stats.bytesReceived)

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
