"""The viewer's hub: which browsers watch what, the clips and live streams they may fetch, and the
events they are sent (``receiver.viewer`` serves them over HTTP)."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from receiver.session import Live, Rendered, Session
from receiver.tokens import Identity

logger = logging.getLogger(__name__)

SESSION_PATTERN = r"[A-Za-z0-9_-]{1,64}"
NAME_PATTERN = r"[0-9]{1,10}"
_SESSION = re.compile(SESSION_PATTERN)
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class ViewerConfig:
    client_queue: int = 64  # events waiting per browser before its oldest are dropped
    backlog: int = 32  # recent clip events a newly opened page is sent (so it can catch up)
    max_clients: int = 32  # concurrent event streams
    served_clips: int = 10_000  # clips whose MP4s stay downloadable (the oldest are forgotten)
    snapshot_seconds: float = 2.0  # how often the live sessions and their bitrate are checked
    keepalive_seconds: float = 15.0  # a comment line on a quiet stream, so dead browsers are noticed
    live_segments: int = 128  # live media segments kept per session (about 96 s at 12 frames each)
    live_sessions: int = 64  # sessions whose live streams are kept (the oldest ended ones go first)

    def __post_init__(self) -> None:
        if min(self.client_queue, self.max_clients, self.served_clips, self.live_segments, self.live_sessions) < 1 or self.backlog < 0:
            raise ValueError("viewer queue, client and clip limits must be at least 1 (backlog >= 0)")
        if self.snapshot_seconds <= 0 or self.keepalive_seconds <= 0:
            raise ValueError("viewer intervals must be positive")


def sse(event: str, data: dict) -> str:
    """One Server-Sent Event. ``json.dumps`` escapes newlines, so ``data`` stays on one line."""
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


class ViewerClient:
    """One connected browser: a bounded queue of encoded events; ``None`` ends the stream.
    ``sender`` limits it to one sender's sessions (a per-sender token); None sees all."""

    def __init__(self, client_id: int, size: int, sender: str | None = None) -> None:
        self.id = client_id
        self.sender = sender
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=size)
        self.dropped = 0

    def offer(self, message: str | None) -> bool:
        """Queue without waiting; when full, drop the oldest event. True when something was dropped."""
        dropped = False
        while True:
            try:
                self.queue.put_nowait(message)
                return dropped
            except asyncio.QueueFull:
                self.queue.get_nowait()
                self.dropped += 1
                dropped = True


class LiveStream:
    """One session's live media: its encoder, the init segment and the last segments, by number."""

    def __init__(self, session_id: str, sender: str, keep: int) -> None:
        self.session_id, self.sender, self.keep = session_id, sender, keep
        self.encoder = None  # receiver.live_media.LiveEncoder, made with the first chunk
        self.segments: OrderedDict[int, bytes] = OrderedDict()
        self.next = 0  # the number the next segment gets
        self.utterance: dict | None = None  # the utterance in progress: seq, caption, text, first segment

    @property
    def init_url(self) -> str:
        return f"/view/live/{self.session_id}/init.mp4"

    def segment_url(self, n: int) -> str:
        return f"/view/live/{self.session_id}/{n}.m4s"

    def add(self, data: bytes) -> int:
        n, self.next = self.next, self.next + 1
        self.segments[n] = data
        while len(self.segments) > self.keep:
            self.segments.popitem(last=False)
        return n

    def describe(self) -> dict:
        """Where a page starts: the utterance in progress (from its first segment still kept), else the next one."""
        start = self.next
        if self.utterance is not None:
            start = max(self.utterance["segment"], next(iter(self.segments), self.next))
        return {
            "session": self.session_id,
            "sender": self.sender,
            "mime": self.encoder.mime if self.encoder is not None else None,
            "init": self.init_url,
            "from": start,
            "next": self.next,
            "utterance": self.utterance,
        }


class ViewerHub:
    """Fans rendered clips and live chunks out to connected browsers; remembers which files it may serve."""

    def __init__(self, settings: ViewerConfig, sessions: dict[str, Session], out_dir: Path) -> None:
        self.settings = settings
        self.sessions = sessions
        self.out_dir = out_dir.resolve()
        self.clients: dict[int, ViewerClient] = {}
        self.published = 0
        self.dropped = 0  # events dropped for slow browsers, all clients together
        self._backlog: deque[tuple[str, str]] = deque(maxlen=settings.backlog)  # (sender, event)
        self._clips: OrderedDict[tuple[str, str], tuple[str, Path]] = OrderedDict()  # -> (sender, mp4)
        self._next_id = 0
        self._last_snapshot: list[dict] | None = None
        self._closed = False
        self.streams: OrderedDict[str, LiveStream] = OrderedDict()  # session id -> its live media
        self._live: asyncio.Queue[Live] = asyncio.Queue()
        self._encoder = ThreadPoolExecutor(max_workers=1, thread_name_prefix="textcall-viewer-live")

    # ------------------------------------------------------------------------------ live chunks

    def live(self, live: Live) -> None:
        """The live observer: called on the event loop with each chunk as it is made. Never waits."""
        if not self._closed and _SESSION.fullmatch(live.session_id):
            self._live.put_nowait(live)

    async def encode_live(self) -> None:
        """Owned by the app's cleanup_ctx: encode each chunk (in order, off the loop) and announce it."""
        loop = asyncio.get_running_loop()
        while True:
            live = await self._live.get()
            try:
                stream = self._stream_for(live)
                if live.chunk is None:  # failed after some chunks were shown
                    stream.utterance = None
                    self._broadcast(sse("failed", {"session": live.session_id, "sender": live.sender_id,
                                                   "seq": live.seq, "reason": live.failed}), sender=live.sender_id)
                    continue
                data = await loop.run_in_executor(self._encoder, self._encode, stream, live)
                self._announce(stream, live, data)
            except Exception:  # one bad chunk must not end live playback for everyone
                logger.exception("viewer: live chunk %d of #%d in session %s failed", getattr(live.chunk, "index", -1),
                                 live.seq, live.session_id)

    def _stream_for(self, live: Live) -> LiveStream:
        stream = self.streams.get(live.session_id)
        if stream is None:
            stream = self.streams[live.session_id] = LiveStream(live.session_id, live.sender_id, self.settings.live_segments)
            self._forget_streams()
        self.streams.move_to_end(live.session_id)
        return stream

    def _forget_streams(self) -> None:
        """Keep at most ``live_sessions`` streams: ended sessions' first, then the least recently used."""
        while len(self.streams) > self.settings.live_sessions:
            victim = next((sid for sid, st in self.streams.items() if sid not in self.sessions), next(iter(self.streams)))
            self._drop_stream(victim)

    def _drop_stream(self, session_id: str) -> None:
        stream = self.streams.pop(session_id, None)
        if stream is not None and stream.encoder is not None:
            self._encoder.submit(stream.encoder.close)

    @staticmethod
    def _encode(stream: LiveStream, live: Live) -> bytes:
        from receiver.live_media import LiveEncoder

        chunk = live.chunk
        if stream.encoder is None:
            stream.encoder = LiveEncoder(chunk.video.shape[2], chunk.video.shape[1], chunk.fps, chunk.sample_rate)
        return stream.encoder.encode(chunk.video, chunk.audio)

    def _announce(self, stream: LiveStream, live: Live, data: bytes) -> None:
        chunk = live.chunk
        start = stream.encoder.seconds - chunk.seconds
        n = stream.add(data)
        if chunk.index == 0:
            stream.utterance = {"seq": live.seq, "caption": live.request.caption, "text": live.request.text,
                                "mode": live.request.mode, "segment": n}
        event = {
            "session": live.session_id,
            "sender": live.sender_id,
            "seq": live.seq,
            "index": chunk.index,
            "last": chunk.last,
            "segment": n,
            "url": stream.segment_url(n),
            "init": stream.init_url,
            "mime": stream.encoder.mime,
            "start": round(start, 4),  # on the session's live timeline, seconds
            "duration": round(chunk.seconds, 4),
            "since_text_ms": int((time.monotonic() - live.arrived) * 1000),
            "t": round(time.time(), 3),
        }
        if chunk.index == 0:
            event.update(caption=live.request.caption, text=live.request.text, mode=live.request.mode)
        if chunk.last:
            stream.utterance = None
        self._broadcast(sse("chunk", event), sender=live.sender_id)

    def live_file(self, session_id: str, name: str, identity: Identity) -> tuple[bytes, str] | None:
        """``init.mp4`` or ``{n}.m4s`` of a session's live stream, for an identity that may watch it."""
        stream = self.streams.get(session_id)
        if stream is None or stream.encoder is None or not _may_watch(identity.sender_id, stream.sender):
            return None
        if name == "init.mp4":
            return stream.encoder.init, "video/mp4"
        data = stream.segments.get(int(name[:-4])) if name.endswith(".m4s") and name[:-4].isdigit() else None
        return (data, "video/iso.segment") if data is not None else None

    # ------------------------------------------------------------------------------- the sink

    def publish(self, rendered: Rendered) -> None:
        """The sink: called on the event loop after a clip is recorded. Never waits."""
        url = self._register(rendered)
        request, clip = rendered.request, rendered.clip
        event = {
            "session": rendered.session_id,
            "sender": rendered.sender_id,
            "seq": rendered.seq,
            "caption": request.caption,
            "text": request.text,
            "mode": request.mode,
            "duration": round(clip.seconds, 3),
            "frames": int(clip.video.shape[0]),
            "size": [int(clip.video.shape[2]), int(clip.video.shape[1])],  # width, height
            "fps": clip.fps,
            "render_ms": rendered.render_ms,
            "first_frame_ms": rendered.first_frame_ms,
            "url": url,
            "t": round(time.time(), 3),
            "bitrate": self._bitrate(rendered.session_id),
        }
        self.published += 1
        if self._backlog.maxlen:
            self._backlog.append((rendered.sender_id, sse("clip", {**event, "replay": True})))
        self._broadcast(sse("clip", event), sender=rendered.sender_id)

    def _register(self, rendered: Rendered) -> str | None:
        mp4 = next((f for f in rendered.files if f.suffix == ".mp4" and _NAME.fullmatch(f.stem)), None)
        if mp4 is None or not _SESSION.fullmatch(rendered.session_id):
            logger.warning("viewer: clip #%d of session %s has no servable MP4 (%s)",
                           rendered.seq, rendered.session_id, rendered.files)
            return None
        key = (rendered.session_id, mp4.stem)
        self._clips[key] = (rendered.sender_id, mp4.resolve())
        self._clips.move_to_end(key)
        while len(self._clips) > self.settings.served_clips:
            self._clips.popitem(last=False)
        return f"/view/clips/{key[0]}/{key[1]}.mp4"

    def clip_path(self, session_id: str, name: str, identity: Identity) -> Path | None:
        """The file behind a clip URL: only ones announced by ``publish``, inside the out folder,
        of a sender this identity may watch."""
        sender, path = self._clips.get((session_id, name), (None, None))
        if path is None or not _may_watch(identity.sender_id, sender):
            return None
        if not path.is_relative_to(self.out_dir) or not path.is_file():
            return None
        return path

    # ---------------------------------------------------------------------------- sessions

    def _bitrate(self, session_id: str) -> dict | None:
        session = self.sessions.get(session_id)
        if session is None:
            return None
        meter = session.meter
        report = meter.report()
        rates = report["bits_per_call_second"]
        return {
            "clips": meter.clips,
            "media_seconds": round(meter.media_seconds, 3),
            "call_seconds": report["call_seconds"],
            "payload_bytes_in": meter.payload_bytes_received,
            "udp_bytes_in": report["udp_bytes_in"],
            "payload_bps": rates["payload_in"],  # bits per second of call, after setup
            "udp_bps": rates["udp_in"],  # all in: every datagram with its UDP/IP header
        }

    def snapshot(self) -> list[dict]:
        """The live sessions, oldest first, with their bitrate so far."""
        return [
            {"session": sid, "sender": session.sender_id or "", "bitrate": self._bitrate(sid)}
            for sid, session in list(self.sessions.items())
        ]

    @staticmethod
    def _visible(snapshot: list[dict], sender: str | None) -> list[dict]:
        return [s for s in snapshot if _may_watch(sender, s["sender"])]

    async def watch_sessions(self) -> None:
        """Owned by the app's cleanup_ctx: announce sessions opening, closing and their bitrate."""
        while True:
            await asyncio.sleep(self.settings.snapshot_seconds)
            try:
                for sid in [sid for sid in self.streams if sid not in self.sessions]:
                    self._drop_stream(sid)  # the session ended: its live stream with it
                current = self.snapshot()
                if current != self._last_snapshot:
                    self._last_snapshot = current
                    for client in list(self.clients.values()):
                        self._deliver(client, sse("sessions", {"sessions": self._visible(current, client.sender)}))
            except Exception:  # a bug of ours must not end the watcher
                logger.exception("viewer: session snapshot failed")

    # ------------------------------------------------------------------------------- clients

    def connect(self, model: str, identity: Identity = Identity(None)) -> ViewerClient:
        self._next_id += 1
        client = ViewerClient(self._next_id, self.settings.client_queue, identity.sender_id)
        hello = {
            "model": model,
            "sender": client.sender,  # set when this token only sees one sender
            "sessions": self._visible(self.snapshot(), client.sender),
            "queue": self.settings.client_queue,
            # each live session's stream, and where a page that opens now starts in it
            "live": [st.describe() for st in self.streams.values()
                     if st.encoder is not None and st.session_id in self.sessions and _may_watch(client.sender, st.sender)],
        }
        client.offer(sse("hello", hello))
        for sender, message in self._backlog:
            if _may_watch(client.sender, sender):
                client.offer(message)
        self.clients[client.id] = client
        return client

    def disconnect(self, client: ViewerClient) -> None:
        if self.clients.pop(client.id, None) is not None and client.dropped:
            logger.info("viewer %d: gone; %d events were dropped for it", client.id, client.dropped)

    def _broadcast(self, message: str, *, sender: str) -> None:
        for client in list(self.clients.values()):
            if _may_watch(client.sender, sender):
                self._deliver(client, message)

    def _deliver(self, client: ViewerClient, message: str) -> None:
        if client.offer(message):
            self.dropped += 1
            if client.dropped == 1 or client.dropped % 100 == 0:
                logger.warning("viewer %d: browser is not keeping up; %d events dropped",
                               client.id, client.dropped)

    def close(self) -> None:
        """End every stream (on shutdown, before aiohttp waits for handlers)."""
        if self._closed:
            return
        self._closed = True
        for client in list(self.clients.values()):
            client.offer(None)
        for sid in list(self.streams):
            self._drop_stream(sid)
        self._encoder.shutdown(wait=False)

    @property
    def closed(self) -> bool:
        return self._closed


def _may_watch(allowed: str | None, sender: str | None) -> bool:
    """A receiver token (allowed None) sees every sender; a per-sender token only its own."""
    return allowed is None or allowed == sender
