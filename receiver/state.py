"""The receiver app's shared state: typed ``web.AppKey``s, in one small module.

``receiver.app`` fills them; the viewer and the other parts read them from here, so none of them
imports the app that mounts it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from model import Generator
from receiver.calls import Calls
from receiver.config import ReceiverConfig
from receiver.gallery import Gallery, UploadBudget
from receiver.identities import SenderKeys
from receiver.render_log import RenderLog
from receiver.worker import GenerationWorker

CONFIG = web.AppKey("config", ReceiverConfig)
GENERATOR = web.AppKey("generator", Generator)
WORKER = web.AppKey("worker", GenerationWorker)
SESSIONS = web.AppKey("sessions", dict)  # session id -> receiver.session.Session
RENDER_LOG = web.AppKey("render_log", RenderLog)
KEYS = web.AppKey("keys", SenderKeys)
UPLOADS = web.AppKey("uploads", UploadBudget)
GALLERY = web.AppKey("gallery", Gallery)
SINKS = web.AppKey("sinks", list)  # callables given every Rendered clip after it is recorded
LIVE = web.AppKey("live", list)  # observers of each chunk as it is made (receiver.session.Live)
READY = web.AppKey("ready", asyncio.Event)
CALLS = web.AppKey("calls", Calls)
