"""The browser viewer: a page, a Server-Sent-Events stream of rendered clips, and the clips' MP4s.

Routes (added by ``setup_viewer`` when the receiver runs with ``--viewer``):

- ``GET /view`` (+ ``/view/viewer.js``, ``/view/viewer.css``): the page; static, no secrets in it.
- ``GET /view/events``: ``text/event-stream`` with a ``hello`` event, the recent clips (``replay``),
  then one ``clip`` event per rendered clip and a ``sessions`` event when the live sessions or their
  bitrate change. Needs ``Authorization: Bearer <token>``, checked as for ``/offer``: a receiver
  token sees every sender; a per-sender token (``--tokens FILE``) sees only that sender's sessions.
- ``GET /view/clips/{session}/{NNNN}.mp4``: a clip the recorder wrote and this viewer announced; the
  path is only a lookup key, never joined onto the disk path. Bearer token too.
- Live: ``GET /view/live/{session}/init.mp4`` and ``/view/live/{session}/{n}.m4s``: the session's
  stream as fragmented MP4 (``receiver/live_media.py``), one media segment per chunk as it is made,
  announced by a ``chunk`` event; the page plays them with Media Source Extensions while the rest of
  the utterance is still rendering. ``hello`` tells a page that opens late where each session's
  utterance in progress started, so it catches up from there. Bearer token too.

The hub is a sink and a live observer: ``publish`` and ``live`` only queue work and put encoded
events on each browser's bounded queue (dropping the oldest event when a browser is too slow, and
counting it; a page that misses a ``chunk`` event fetches the segment by its number anyway), so no
browser can hold up generation. Chunks are encoded on a thread of the hub's own, in order.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from aiohttp import web

from receiver.state import CONFIG, GENERATOR, LIVE, READY, SESSIONS, SINKS
from receiver.tokens import Identity, authenticate
from receiver.viewer_hub import NAME_PATTERN, SESSION_PATTERN, ViewerConfig, ViewerHub

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


VIEWER = web.AppKey("viewer", ViewerHub)


def setup_viewer(app: web.Application, settings: ViewerConfig | None = None) -> ViewerHub:
    """Add the viewer's routes, its sink and its background task to the receiver's app."""
    config = app[CONFIG]
    if not config.record:
        raise ValueError("the viewer plays the recorded MP4s: it needs recording on")
    hub = ViewerHub(settings or ViewerConfig(), app[SESSIONS], config.out_dir)
    app[VIEWER] = hub
    app[SINKS].append(hub.publish)
    app[LIVE].append(hub.live)
    app.cleanup_ctx.append(_watching)
    app.on_shutdown.append(_end_streams)
    app.router.add_get("/view", page)
    app.router.add_get("/view/{asset:viewer\\.(?:js|css)}", asset)
    app.router.add_get("/view/events", events)
    app.router.add_get(f"/view/clips/{{session:{SESSION_PATTERN}}}/{{name:{NAME_PATTERN}}}.mp4", clip)
    app.router.add_get(f"/view/live/{{session:{SESSION_PATTERN}}}/{{name:init\\.mp4|{NAME_PATTERN}\\.m4s}}", live_file)
    return hub


async def _watching(app: web.Application):
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(app[VIEWER].watch_sessions(), name="viewer-sessions"),
             loop.create_task(app[VIEWER].encode_live(), name="viewer-live")]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    app[VIEWER].close()


async def _end_streams(app: web.Application) -> None:
    app[VIEWER].close()


def _authorized(request: web.Request) -> Identity:
    """Who the bearer token says this is; a 401 (with its challenge) when it says nobody."""
    config = request.app[CONFIG]
    identity = authenticate(request.headers.get("Authorization", ""), config.tokens, config.sender_tokens)
    if identity is None:
        raise web.HTTPUnauthorized(text="missing or wrong bearer token", headers={"WWW-Authenticate": 'Bearer realm="textcall"'})
    return identity


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
    identity = _authorized(request)
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
    session_id, name = request.match_info["session"], request.match_info["name"]
    path = request.app[VIEWER].clip_path(session_id, name, _authorized(request))
    if path is None:
        raise web.HTTPNotFound(text=f"no clip {name} in session {session_id}")
    return web.FileResponse(path, headers={"Content-Type": "video/mp4", "Cache-Control": "private, max-age=3600"})


async def live_file(request: web.Request) -> web.StreamResponse:
    session_id, name = request.match_info["session"], request.match_info["name"]
    found = request.app[VIEWER].live_file(session_id, name, _authorized(request))
    if found is None:
        raise web.HTTPNotFound(text=f"no live {name} in session {session_id} (ended, or too old)")
    data, kind = found
    return web.Response(body=data, headers={"Content-Type": kind, "Cache-Control": "private, max-age=600"})

