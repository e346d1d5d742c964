"""The browser viewer: a page, a Server-Sent-Events stream of rendered clips, and the clips' MP4s.

Routes (added by ``setup_viewer`` when the receiver runs with ``--viewer``):

- ``GET /view`` (+ ``/view/viewer.js``, ``/view/viewer.css``): the page; static, no secrets in it.
- ``GET /view/events``: ``text/event-stream`` with a ``hello`` event, the recent clips (``replay``),
  then one ``clip`` event per rendered clip and a ``sessions`` event when the live sessions or their
  bitrate change. Needs ``Authorization: Bearer <token>``, checked as for ``/offer``: a receiver
  token sees every sender; a per-sender token (``--tokens FILE``) sees only that sender's sessions.
- ``GET /view/clips/{session}/{NNNN}.mp4``: a clip the recorder wrote and this viewer announced; the
  path is only a lookup key, never joined onto the disk path. Bearer token too.

The hub is a sink: ``publish`` only puts encoded events on each browser's bounded queue (dropping the
oldest event when a browser is too slow, and counting it), so no browser can hold up generation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from receiver.app import CONFIG, GENERATOR, READY, SESSIONS, SINKS
from receiver.session import Rendered, Session
from receiver.tokens import Identity, authenticate

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "viewer.html": "text/html",
    "viewer.js": "text/javascript",
    "viewer.css": "text/css",
}
# The page only talks to this origin and plays clips from blob: URLs (fetched with the token).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "media-src blob:; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first load may carry ?token=
    "Cache-Control": "no-cache",
}
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

    def __post_init__(self) -> None:
        if min(self.client_queue, self.max_clients, self.served_clips) < 1 or self.backlog < 0:
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


class ViewerHub:
    """Fans rendered clips out to connected browsers and remembers which MP4s it may serve."""

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
        rates = meter.report()["bits_per_media_second"]
        return {
            "clips": meter.clips,
            "media_seconds": round(meter.media_seconds, 3),
            "payload_bytes_in": meter.payload_bytes_received,
            "wire_bytes_in": meter.wire_bytes_received,
            "payload_bps": rates["payload_in"],  # bits per second of generated media
            "wire_bps": rates["wire_in"],
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

    @property
    def closed(self) -> bool:
        return self._closed


def _may_watch(allowed: str | None, sender: str | None) -> bool:
    """A receiver token (allowed None) sees every sender; a per-sender token only its own."""
    return allowed is None or allowed == sender


VIEWER = web.AppKey("viewer", ViewerHub)


def setup_viewer(app: web.Application, settings: ViewerConfig | None = None) -> ViewerHub:
    """Add the viewer's routes, its sink and its background task to the receiver's app."""
    config = app[CONFIG]
    if not config.record:
        raise ValueError("the viewer plays the recorded MP4s: it needs recording on")
    hub = ViewerHub(settings or ViewerConfig(), app[SESSIONS], config.out_dir)
    app[VIEWER] = hub
    app[SINKS].append(hub.publish)
    app.cleanup_ctx.append(_watching)
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/view", page)
    app.router.add_get("/view/{asset:viewer\\.(?:js|css)}", asset)
    app.router.add_get("/view/events", events)
    app.router.add_get(f"/view/clips/{{session:{SESSION_PATTERN}}}/{{name:{NAME_PATTERN}}}.mp4", clip)
    return hub


async def _watching(app: web.Application):
    task = asyncio.get_running_loop().create_task(app[VIEWER].watch_sessions(), name="viewer-sessions")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def _end_streams(app: web.Application) -> None:
    app[VIEWER].close()


def _identity(request: web.Request) -> Identity | None:
    config = request.app[CONFIG]
    return authenticate(request.headers.get("Authorization", ""), config.tokens, config.sender_tokens)


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="missing or wrong bearer token",
        headers={"WWW-Authenticate": 'Bearer realm="textcall"'},
    )


async def page(request: web.Request) -> web.StreamResponse:
    return _static("viewer.html")


async def asset(request: web.Request) -> web.StreamResponse:
    return _static(request.match_info["asset"])


def _static(name: str) -> web.StreamResponse:
    path = STATIC / name
    if name not in ASSETS or not path.is_file():
        raise web.HTTPNotFound(text=f"{name} is not part of this install")
    return web.Response(
        body=path.read_bytes(), content_type=ASSETS[name], charset="utf-8", headers=PAGE_HEADERS
    )


async def events(request: web.Request) -> web.StreamResponse:
    app = request.app
    hub: ViewerHub = app[VIEWER]
    identity = _identity(request)
    if identity is None:
        return _unauthorized()
    if hub.closed:
        return web.Response(status=503, text="receiver is shutting down")
    if len(hub.clients) >= hub.settings.max_clients:
        return web.Response(status=503, text=f"too many viewers ({hub.settings.max_clients})")
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx in front: do not buffer the stream
        }
    )
    await response.prepare(request)
    model = app[GENERATOR].name if app[READY].is_set() else app[CONFIG].model
    client = hub.connect(model, identity)
    logger.info("viewer %d: connected from %s", client.id, request.remote)
    try:
        while True:
            try:
                message = await asyncio.wait_for(client.queue.get(), hub.settings.keepalive_seconds)
            except TimeoutError:
                message = ": keepalive\n\n"
            if message is None:
                break
            await response.write(message.encode("utf-8"))
    except ConnectionError:  # the browser went away mid-write
        logger.info("viewer %d: disconnected", client.id)
    finally:
        hub.disconnect(client)
    return response


async def clip(request: web.Request) -> web.StreamResponse:
    identity = _identity(request)
    if identity is None:
        return _unauthorized()
    session_id, name = request.match_info["session"], request.match_info["name"]
    path = request.app[VIEWER].clip_path(session_id, name, identity)
    if path is None:
        raise web.HTTPNotFound(text=f"no clip {name} in session {session_id}")
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=3600"})
