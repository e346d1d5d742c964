"""The receiver's aiohttp app: signaling (``POST /offer``), ``GET /health``, and session ownership."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Callable

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import SessionDescription

from model import Generator, load_generator
from protocol.rtc import loopback_only, prefer_chacha20, rtc_configuration, sparse_consent
from receiver.calls import Calls
from receiver.config import MAX_OFFER_BYTES, ReceiverConfig
from receiver.gallery import Gallery, UploadBudget
from receiver.identities import SENDERS_FILE, SenderKeys
from receiver.player import Player
from receiver.render_log import RenderLog
from receiver.session import Rendered, Session
from receiver.state import (  # the app's state keys (tests and tools read them from here too)
    CALLS, CONFIG, GALLERY, GENERATOR, KEYS, LIVE, READY, RENDER_LOG, SESSIONS, SINKS, UPLOADS, WORKER,
)
from receiver.tokens import authenticate
from receiver.viewer import setup_viewer
from receiver.worker import GenerationWorker

logger = logging.getLogger(__name__)



def make_app(
    config: ReceiverConfig,
    *,
    generator: Generator | None = None,
    sinks: list[Callable[[Rendered], None]] | None = None,
) -> web.Application:
    """Build the receiver. ``generator`` overrides ``config.model`` (tests pass a stub or a fake);
    ``sinks`` are called with every rendered clip, after it is recorded."""
    app = web.Application(client_max_size=MAX_OFFER_BYTES)
    app[CONFIG] = config
    app[SESSIONS] = {}
    app[RENDER_LOG] = RenderLog(config.out_dir / "rendered.json" if config.record else None)
    app[KEYS] = SenderKeys(config.out_dir / SENDERS_FILE if config.record else None)
    app[UPLOADS] = UploadBudget()
    app[GALLERY] = Gallery(config.gallery_dir)
    app[SINKS] = list(sinks or [])
    app[LIVE] = []
    app[READY] = asyncio.Event()
    app.cleanup_ctx.append(_generation(generator))
    app.cleanup_ctx.append(_playback)
    app.on_shutdown.append(_close_sessions)
    app.router.add_post("/offer", offer)
    app.router.add_get("/health", health)
    if config.viewer:
        setup_viewer(app)
    return app


def _generation(generator: Generator | None):
    async def context(app: web.Application):
        config = app[CONFIG]
        worker = GenerationWorker(config.device)
        app[WORKER] = worker
        if config.record:  # what an unclean stop left half-written (receiver/recorder.py)
            from receiver.recorder import recover_recordings

            await asyncio.get_running_loop().run_in_executor(None, recover_recordings, config.out_dir)
        if generator is None:
            logger.info("loading model %r on %s", config.model, config.device)
            app[GENERATOR] = await worker.run(
                lambda: load_generator(config.model, config.device, config.generator_settings)
            )
        else:
            app[GENERATOR] = generator
        app[CALLS] = Calls(app[GENERATOR], config.out_dir if config.record else None, limit=max(256, 4 * config.max_peers))
        app[READY].set()
        logger.info("receiver ready: model %s", app[GENERATOR].name)
        yield
        worker.close()

    return context


async def _playback(app: web.Application):
    player = Player.create() if app[CONFIG].play else None
    if player is not None:
        app[LIVE].append(lambda live: live.chunk is not None and player.feed(f"textcall {live.sender_id}", live.chunk))
    elif app[CONFIG].play and not app[CONFIG].record:
        logger.warning("nothing would show the clips: recording them to %s", app[CONFIG].out_dir)
    yield
    if player is not None:
        await asyncio.get_running_loop().run_in_executor(None, player.close)


async def _close_sessions(app: web.Application) -> None:
    sessions = list(app[SESSIONS].values())
    await asyncio.gather(*(s.close("receiver shutting down", finish=False) for s in sessions), return_exceptions=True)


async def health(request: web.Request) -> web.Response:
    app = request.app
    ready = app[READY].is_set()
    body = {
        "status": "ok" if ready else "loading",
        "model": app[GENERATOR].name if ready else app[CONFIG].model,
        "sessions": len(app[SESSIONS]),
    }
    return web.json_response(body, status=200 if ready else 503)


async def offer(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    identity = authenticate(request.headers.get("Authorization", ""), config.tokens, config.sender_tokens)
    if identity is None:
        return web.Response(
            status=401,
            text="missing or wrong bearer token",
            headers={"WWW-Authenticate": 'Bearer realm="textcall"'},
        )
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return web.Response(status=413, text=f"offer larger than {MAX_OFFER_BYTES} bytes")
    try:
        async with asyncio.timeout(config.request_timeout):  # a body trickled in forever holds nothing
            raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.Response(status=413, text=f"offer larger than {MAX_OFFER_BYTES} bytes")
    except TimeoutError:
        return web.Response(status=408, text=f"the offer's body took more than {config.request_timeout:g} s")
    try:
        params = json.loads(raw)
        if not isinstance(params, dict):
            raise ValueError("expected a JSON object")
        sdp, kind = params.get("sdp"), params.get("type")
        if not isinstance(sdp, str) or not sdp.strip() or kind != "offer":
            raise ValueError('expected {"sdp": "<offer SDP>", "type": "offer"}')
        textcall_peer = isinstance(params.get("textcall"), dict)  # `textcall send` (a browser: no such field)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return web.Response(status=400, text=f"malformed offer: {exc}")
    except RecursionError:  # deeply nested JSON: a 400, not a 500 with a traceback
        return web.Response(status=400, text="malformed offer: JSON nested too deeply")
    if not app[READY].is_set():
        return web.Response(status=503, text="receiver is still loading its model")
    if len(app[SESSIONS]) >= config.max_peers:
        return web.Response(status=503, text=f"receiver is full ({config.max_peers} peers)")

    pc = RTCPeerConnection(rtc_configuration(config.ice_servers))
    try:
        if not any(m.kind == "application" for m in SessionDescription.parse(sdp).media):
            raise ValueError("the offer has no data channel (m=application)")
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if config.loopback:
            loopback_only(pc)
        if textcall_peer:  # both ends run textcall: consent checks every ~20 s instead of ~5 (protocol.rtc)
            sparse_consent(pc)
            prefer_chacha20(pc)  # and ChaCha20-Poly1305 DTLS records, 8 bytes smaller than AES-GCM's
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # aiortc raises a variety of errors for bad SDP
        await pc.close()
        logger.info("refused offer from %s: %s", request.remote, exc)
        return web.Response(status=400, text=f"malformed SDP: {type(exc).__name__}: {exc}")
    session = _new_session(app, pc, identity.sender_id)  # before ICE completes, so the data channel finds it
    logger.info("session %s: offer from %s accepted", session.id, request.remote)
    return web.json_response({"sdp": pc.localDescription.sdp, "type": pc.localDescription.type})


def _new_session(app: web.Application, pc: RTCPeerConnection, bound_sender_id: str | None) -> Session:
    sessions: dict[str, Session] = app[SESSIONS]

    def on_hello(session: Session, sender_id: str) -> str | None:
        """A Hello for ``sender_id``: replace its older sessions, unless this one could be anyone (no
        secret, no per-sender token) and one of them is still connected. None, or why not."""
        others = [o for o in sessions.values() if o is not session and o.sender_id == sender_id and not o.closed.is_set()]
        if not session.proven and any(o.pc.connectionState == "connected" for o in others):
            return (f"sender id {sender_id!r} is live in another session, and a Hello without the sender's secret "
                    "cannot replace it; wait for that session to end, or send the sender's secret")
        for other in others:
            asyncio.get_running_loop().create_task(other.close("replaced by a newer connection"))
        return None

    session = Session(
        uuid.uuid4().hex[:12],
        pc,
        config=app[CONFIG],
        generator=app[GENERATOR],
        calls=app[CALLS],
        worker=app[WORKER],
        render_log=app[RENDER_LOG],
        keys=app[KEYS],
        upload_budget=app[UPLOADS],
        gallery=app[GALLERY],
        sinks=app[SINKS],
        live=app[LIVE],
        on_hello=on_hello,
        bound_sender_id=bound_sender_id,
        on_closed=lambda s: sessions.pop(s.id, None),
    )
    sessions[session.id] = session
    pc.on("datachannel", session.attach)

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState in ("failed", "closed"):
            session._schedule_close(f"peer connection {pc.connectionState}")

    return session
