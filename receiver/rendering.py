"""Rendering a session's utterances: generate (chunks to live observers as they come), record, mark,
tell the sinks, ack. ``Rendering`` is the part of ``receiver.session.Session`` that does it; the
types here are what observers (the player, the viewer, tests) are handed."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from model import Chunk, Clip, Request, join_chunks
from protocol import codec
from protocol import textcall_pb2 as pb
from protocol.codec import Code, Outcome, ProtocolError

logger = logging.getLogger("receiver.session")  # one logger name for a session's lines

ACK_HOLD_S = 30.0  # the longest a RENDERED ack waits to be sent with later ones (``codec.ACK_RANGES``)


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


class Rendering:
    """A session's utterances, one at a time, in order (mixed into ``Session``, whose state it uses:
    inbox, worker, calls, recorder, render log, meter, sinks and live observers, journal)."""

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
            caption = clip.info.get("caption")
            if caption and caption.get("unknown"):  # words the caption reader passed over: a note, not an error
                self._journal("caption", seq=msg.seq, read=caption.get("read", {}), unknown=caption["unknown"])
            self._journal("rendered", seq=msg.seq, media_seconds=round(clip.seconds, 3),
                          render_ms=render_ms, mode=request.mode, files=[str(f) for f in written],
                          arrived=round(job.wall, 3), chunks=int(times.get("chunks", 0)),
                          first_frame_ms=first_frame_ms,
                          last_frame_ms=_ms(times.get("last", job.arrived) - job.arrived),
                          **{k: clip.info[k] for k in ("speaker", "speaker_gender") if k in clip.info},  # the voice
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
        self._ack_rendered(msg.seq, clip.seconds, render_ms)

    def _ack_rendered(self, seq: int, media_seconds: float, render_ms: int) -> None:
        """The RENDERED ack of ``seq``: at once, or (a quiet sender that takes ranges) held up to
        ``ACK_HOLD_S`` and sent as one ack for the run of seqs rendered meanwhile. Every ack costs a
        SCTP SACK back, so one for several saves both. Held acks go out early when half the sender's
        window is held, when the run breaks (a seq refused), on a ping and when the session closes."""
        if not self.ack_ranges or not self._hold_acks:
            self._flush_acks()
            self._send(codec.ack(seq, Outcome.RENDERED, media_seconds=media_seconds, render_ms=render_ms,
                                 queue_depth=self.inbox.qsize()))
            return
        held = self._held_acks
        if held is not None and seq != held[1] + 1:
            self._flush_acks()
            held = None
        if held is None:
            self._held_acks = [seq, seq, media_seconds, render_ms]
            self._ack_timer = asyncio.get_running_loop().call_later(ACK_HOLD_S, self._flush_acks)
        else:
            held[1:] = [seq, held[2] + media_seconds, render_ms]
        if self._held_acks[1] - self._held_acks[0] + 1 >= max(1, self.config.queue_size // 2):
            self._flush_acks()

    def _flush_acks(self) -> None:
        """Send the held RENDERED acks (one ack for the run) now; nothing when none are held."""
        if self._ack_timer is not None:
            self._ack_timer.cancel()
            self._ack_timer = None
        held, self._held_acks = self._held_acks, None
        if held is not None:
            first, last, media_seconds, render_ms = held
            self._send(codec.ack(last, Outcome.RENDERED, media_seconds=media_seconds, render_ms=render_ms,
                                 queue_depth=self.inbox.qsize(), first_seq=first))

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
