"""The sender: one peer connection at a time to a receiver, an outbox, acks, heartbeats, reconnects.

``Sender.say()`` only ever puts an utterance into the outbox (on disk when configured); a pump sends
what is pending while fewer than the receiver's window are in flight, and forgets an utterance only
when the receiver acks it as rendered (or refuses it for good). If the connection drops, a new peer
connection is signalled (aiortc has no ICE restart) with backoff, and everything unacked is sent again;
the receiver de-duplicates by sender id and sequence number.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time

from aiortc import RTCPeerConnection

from protocol import codec
from protocol import textcall_pb2 as pb
from protocol import textpack
from protocol.codec import Code, Outcome, ProtocolError
from protocol.rtc import loopback_only, prefer_chacha20, rtc_configuration, sparse_consent
from sender.events import (  # the configuration and the events (imported from here by callers too)
    Connected, Counters, Disconnected, Event, FatalError, Queued, ReceiverError, Refused, Rendered, SenderConfig, Waiting,
)
from sender.connection import Connection as _Connection
from sender.identity import process_secret
from sender.outbox import Outbox, Pending
from sender.signaling import SignalingError, exchange_offer

logger = logging.getLogger(__name__)

RETRY_LATER = {Code.QUEUE_FULL, Code.RATE_LIMITED}
RETRY_AFTER_S = 1.0  # an utterance refused with a RETRY_LATER code is resent after this long


class Sender:
    def __init__(self, config: SenderConfig) -> None:
        self.config = config
        self.outbox = Outbox(config.outbox_path)
        self._secret = config.secret if config.secret is not None else process_secret(config.sender_id)
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self.counters = Counters()
        self._uploads: dict[str, bytes] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._conn: _Connection | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        self._fatal: Exception | None = None
        self._retry_at: dict[int, float] = {}
        self._nonce = 0
        self._ask_for_acks = False  # drain() was called: ping for held acks once everything is sent
        self._update_idle()

    # ------------------------------------------------------------------------------ public verbs

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="textcall-sender")

    def say(self, *, caption: str = "", text: str = "", style_image_id: str = "", source: str = "") -> Pending:
        """Queue one utterance; raises ProtocolError when the receiver would refuse it anyway.
        ``source`` ("<key>:<n>") records where it came from (see ``Outbox.progress``)."""
        if self._fatal is not None:
            raise FatalError(str(self._fatal))
        probe = codec.utterance(1, caption=caption, text=text, style_image_id=style_image_id)
        codec.validate(probe)  # fail fast, before anything is stored
        item = self.outbox.add(
            caption=caption, text=text, style_image_id=style_image_id, sent_unix_ms=codec.now_ms(), source=source
        )
        self._update_idle()
        self._wake.set()
        return item

    def upload_style_image(self, image_id: str, data: bytes) -> None:
        """Share a style image once per connection (re-sent after a reconnect)."""
        chunks = codec.style_image_chunks(image_id, data)  # validates size and id
        self._uploads[image_id] = data
        if self._conn is not None and self._conn.welcome.done():
            for chunk in chunks:
                self._send(self._conn, chunk)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until every queued utterance is rendered or refused. False on timeout or fatal."""
        # a receiver may hold its acks to send one for several (codec.ACK_RANGES): once all is sent,
        # a ping asks for them now, since nothing more is coming (the heartbeat loop sends it)
        self._ask_for_acks = True
        self._wake.set()
        try:
            await asyncio.wait_for(self._wait_idle(), timeout)
        except TimeoutError:
            return False
        return self._fatal is None

    @property
    def fatal(self) -> Exception | None:
        return self._fatal

    async def close(self, reason: str = "bye") -> None:
        if self._closing:
            return
        self._closing = True
        conn = self._conn
        if conn is not None and conn.channel.readyState == "open":
            self._send(conn, codec.bye(reason))
            await asyncio.sleep(0.05)  # let the Bye leave before the transport closes
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        if conn is not None:
            self._record_wire(conn)
            await asyncio.shield(conn.pc.close())
        self.outbox.close()

    # ---------------------------------------------------------------------------- connection

    async def _wait_idle(self) -> None:
        while not (self._idle.is_set() or self._fatal is not None):
            await asyncio.sleep(0.05)

    def _update_idle(self) -> None:
        if len(self.outbox) == 0:
            self._idle.set()
        else:
            self._idle.clear()

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            conn = None
            reason = "connection closed"
            try:
                conn = await asyncio.wait_for(self._connect(), self.config.connect_timeout)
                attempt = 0
                await self._serve(conn)
                reason = conn.close_reason
            except SignalingError as exc:
                reason = str(exc)
                if not exc.retryable:
                    self._fail(FatalError(reason))
                    return
            except FatalError as exc:
                self._fail(exc)
                return
            except (TimeoutError, ConnectionError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            finally:
                if conn is not None:
                    self._record_wire(conn)
                    self._conn = None
                    # shielded: aiortc's close() awaits one future shared by every caller, and
                    # cancelling this task mid-close would cancel it for them too (close() below)
                    await asyncio.shield(conn.pc.close())
            if self._closing:
                return
            if not self.config.reconnect:
                self._fail(FatalError(f"disconnected: {reason}"))
                return
            delay = min(self.config.max_backoff, 0.5 * 2**attempt) * (0.75 + 0.5 * random.random())
            attempt += 1
            logger.info("sender %s: %s; reconnecting in %.1f s", self.config.sender_id, reason, delay)
            self.events.put_nowait(Disconnected(reason, delay))
            await asyncio.sleep(delay)

    def _fail(self, exc: Exception) -> None:
        self._fatal = exc
        self.events.put_nowait(Disconnected(str(exc), None))
        self._idle.set()

    async def _connect(self) -> _Connection:
        pc = RTCPeerConnection(rtc_configuration(self.config.ice_servers))
        try:
            channel = pc.createDataChannel(codec.CHANNEL_LABEL, ordered=True)
            if self.config.loopback:
                loopback_only(pc)
            sparse_consent(pc)  # the receiver runs textcall: both ends check consent sparsely (RFC 7675 allows)
            prefer_chacha20(pc)  # 8 bytes fewer a DTLS record where the receiver agrees (a textcall receiver does)
            conn = _Connection(pc, channel, asyncio.get_running_loop().create_future())
            # a connection that dies before Welcome fails this future with nobody awaiting it
            conn.welcome.add_done_callback(lambda f: f.cancelled() or f.exception())
            opened = asyncio.Event()
            channel.on("open", opened.set)
            channel.on("message", lambda frame: self._on_message(conn, frame))
            channel.on("close", lambda: self._on_closed(conn, "data channel closed"))

            @pc.on("connectionstatechange")
            def _state() -> None:
                if pc.connectionState in ("failed", "closed"):
                    self._on_closed(conn, f"peer connection {pc.connectionState}")

            await pc.setLocalDescription(await pc.createOffer())
            answer = await exchange_offer(
                self.config.receiver_url, self.config.token, pc.localDescription, tls_ca=self.config.tls_ca
            )
            await pc.setRemoteDescription(answer)
            await opened.wait()
            wanted = ("style-upload", codec.ACK_RANGES) + ((codec.QUIET,) if self.config.quiet else ())
            self._send(conn, codec.hello(self.config.sender_id, wanted, self._secret))
            welcome: pb.Welcome = await conn.welcome
            conn.window = welcome.window
            offered = set(welcome.capabilities)
            if self.config.compress:
                known = [v for v in textpack.DICTIONARIES if textpack.capability(v) in offered]
                conn.dictionary = max(known, default=0)
                if conn.dictionary and textpack.stream_capability(conn.dictionary) in offered:
                    # later texts point back at earlier ones; coded by a PPM model where the receiver has it
                    conn.history = textpack.History(ppm=self.config.text_coder == "ppm"
                                                    and textpack.ppm_capability(conn.dictionary) in offered)
            conn.quiet = self.config.quiet and codec.QUIET in offered
            conn.last_heard = time.monotonic()
            return conn
        except BaseException:
            await pc.close()
            raise

    async def _serve(self, conn: _Connection) -> None:
        self._conn = conn
        welcome: pb.Welcome = conn.welcome.result()
        for item in self.outbox.skip_to(welcome.last_rendered_seq):
            self.events.put_nowait(Rendered(item.seq, 0.0, 0, 0.0, duplicate=True))
        self._update_idle()
        for image_id, data in self._uploads.items():
            for chunk in codec.style_image_chunks(image_id, data):
                self._send(conn, chunk)
        self.events.put_nowait(
            Connected(welcome.session_id, welcome.model, welcome.window, pending=len(self.outbox))
        )
        next_ping = 0.0
        dead_after = self.config.quiet_dead_after if conn.quiet else self.config.dead_after
        heard_bytes = 0
        while not conn.closed.is_set():
            now = time.monotonic()
            if conn.quiet:  # any datagram from the receiver (its SCTP SACK of our utterance) proves it alive
                received = conn.wire_bytes()[1]
                if received > heard_bytes:
                    heard_bytes, conn.last_heard = received, now
            if now - conn.last_heard > dead_after:
                conn.close_reason = f"receiver silent for {now - conn.last_heard:.1f} s"
                return
            if conn.quiet:  # ping only when nothing has come from the receiver for a while
                due = now - max(conn.last_heard, conn.last_ping) >= self.config.quiet_ping_interval
            else:
                due = now >= next_ping
            if due:
                self._ping(conn, now)
                next_ping = now + self.config.ping_interval
            self._pump(conn)
            if self._ask_for_acks and conn.quiet and conn.in_flight and not any(
                    item.seq not in conn.in_flight for item in self.outbox.pending()):  # all sent, acks owed
                self._ask_for_acks = False
                self._ping(conn, now)
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=min(0.5, self.config.ping_interval))
            except TimeoutError:
                pass

    def _ping(self, conn: _Connection, now: float) -> None:
        self._nonce += 1
        self._send(conn, codec.ping(self._nonce))
        conn.last_ping = now

    def _pump(self, conn: _Connection) -> None:
        now = time.monotonic()
        waiting = 0
        for item in self.outbox.pending():
            if item.seq in conn.in_flight:
                continue
            if self._retry_at.get(item.seq, 0.0) > now:
                break  # in order: the receiver would refuse what comes after it anyway
            if len(conn.in_flight) >= conn.window:
                waiting += 1
                continue
            envelope = codec.utterance(
                item.seq,
                caption=item.caption,
                text=item.text,
                style_image_id=item.style_image_id,
                sent_unix_ms=item.sent_unix_ms,
                dictionary=conn.dictionary,
                history=conn.history,
                timestamp=conn.history is None,  # a receiver that packs against history times arrivals itself
            )
            self.outbox.mark_sent(item.seq)
            self._send(conn, envelope)
            conn.in_flight.add(item.seq)
        if waiting:
            self.events.put_nowait(Waiting(len(conn.in_flight), waiting))

    def _send(self, conn: _Connection, envelope: pb.Envelope) -> None:
        frame = codec.encode(envelope)
        try:
            conn.channel.send(frame)
        except Exception as exc:  # aiortc raises InvalidStateError once the channel is closing
            self._on_closed(conn, f"send failed: {exc}")
            return
        self.counters.payload_bytes_sent += len(frame)
        self.counters.messages_sent += 1

    def _on_closed(self, conn: _Connection, reason: str) -> None:
        if not conn.closed.is_set():
            conn.close_reason = reason
            conn.closed.set()
            if not conn.welcome.done():
                conn.welcome.set_exception(ConnectionError(reason))
            self._wake.set()

    # ------------------------------------------------------------------------------ messages

    def _on_message(self, conn: _Connection, frame: bytes | str) -> None:
        """Channel event handler: never raises."""
        conn.last_heard = time.monotonic()
        size = len(frame) if isinstance(frame, bytes) else len(frame.encode())
        self.counters.payload_bytes_received += size
        self.counters.messages_received += 1
        try:
            envelope = codec.decode(frame)
        except ProtocolError as exc:
            logger.warning("sender %s: bad frame from receiver: %s", self.config.sender_id, exc)
            return
        kind = envelope.WhichOneof("body")
        try:
            handler = getattr(self, f"_on_{kind}", None)
            if handler is None:
                logger.warning("sender %s: unexpected %s from receiver", self.config.sender_id, kind)
            else:
                handler(conn, getattr(envelope, kind))
        except Exception:
            logger.exception("sender %s: handling %s failed", self.config.sender_id, kind)

    def _on_welcome(self, conn: _Connection, msg: pb.Welcome) -> None:
        if not conn.welcome.done():
            conn.welcome.set_result(msg)

    def _on_ack(self, conn: _Connection, msg: pb.Ack) -> None:
        if msg.outcome == Outcome.QUEUED:
            self.events.put_nowait(Queued(msg.seq, msg.queue_depth))
            return
        for seq in range(msg.first_seq or msg.seq, msg.seq + 1):  # a RENDERED ack may cover a range
            conn.in_flight.discard(seq)
            self._retry_at.pop(seq, None)
            item = self.outbox.done(seq)
            if item is not None:
                latency = max(0.0, (codec.now_ms() - item.sent_unix_ms) / 1000)
                self.events.put_nowait(
                    Rendered(
                        seq,
                        msg.media_seconds if seq == msg.seq else 0.0,
                        msg.render_ms if seq == msg.seq else 0,
                        latency,
                        duplicate=msg.outcome == Outcome.DUPLICATE,
                    )
                )
        self._update_idle()
        self._wake.set()

    def _on_error(self, conn: _Connection, msg: pb.Error) -> None:
        code = codec.code_name(msg.code)
        if not msg.HasField("seq"):
            self.events.put_nowait(ReceiverError(code, msg.reason))
            if msg.code in (Code.UNSUPPORTED_VERSION, Code.IDENTITY):  # trying again would get the same answer
                self._on_closed(conn, msg.reason)
                self._fail(FatalError(f"{code}: {msg.reason}"))
            return
        conn.in_flight.discard(msg.seq)
        if msg.code == Code.SEQ_GAP:  # our numbering and the receiver's disagree: the Welcome of a new
            self.events.put_nowait(ReceiverError(code, msg.reason))  # connection resynchronises them
            self._on_closed(conn, f"{code}: {msg.reason}")
            return
        if msg.code in RETRY_LATER:
            self._retry_at[msg.seq] = time.monotonic() + RETRY_AFTER_S
            self.events.put_nowait(ReceiverError(code, msg.reason, retry_in=RETRY_AFTER_S))
        else:
            if self.outbox.done(msg.seq) is not None:
                self.events.put_nowait(Refused(msg.seq, code, msg.reason))
            self._update_idle()
        self._wake.set()

    def _on_pong(self, conn: _Connection, msg: pb.Pong) -> None:
        rtt = max(0.0, float(codec.now_ms() - msg.ping_sent_unix_ms))
        previous = self.counters.rtt_ms
        self.counters.rtt_ms = rtt if previous is None else 0.8 * previous + 0.2 * rtt

    def _on_ping(self, conn: _Connection, msg: pb.Ping) -> None:
        self._send(conn, codec.pong(msg))

    def _on_bye(self, conn: _Connection, msg: pb.Bye) -> None:
        self._on_closed(conn, f"receiver said bye: {msg.reason or 'no reason'}")

    # ---------------------------------------------------------------------------- wire bytes

    def _record_wire(self, conn: _Connection) -> None:
        if conn.wire_recorded:
            return
        conn.wire_recorded = True
        sent, received = conn.wire_bytes()
        self.counters.wire_bytes_sent += sent
        self.counters.wire_bytes_received += received
